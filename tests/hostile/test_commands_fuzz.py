"""Hostile files through the commands, under the 1.5 GiB cap: every outcome is exit 0, 1 or 3 with one
line, never a traceback, and a command that fails leaves the previous run's files as they were."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from _files import placeholder_users
from _hostile import check_contract, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_readers_fuzz import CELLS, LINES, XML_DOCS, csv_text

COMMANDS = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory) -> Path:
    """A quality run over good data: its files must survive any later failed run into the same folder."""
    folder = tmp_path_factory.mktemp("previous")
    users = placeholder_users(folder / "users.xml", 30)
    outcome = run_cli("quality", "--users", users, "--sis", "none", "--out", folder / "out", "--quiet",
                      "--no-duplicates")
    assert outcome.code == 0, outcome.stderr
    return folder / "out"


HOSTILE = st.one_of(st.tuples(st.just("users.xml"), XML_DOCS),
                    st.tuples(st.just("users.jsonl"), st.lists(LINES, max_size=5).map("\n".join)),
                    st.tuples(st.just("users.csv"), st.builds(csv_text, st.just(["primary_id", "first_name"]),
                                                              st.lists(st.lists(CELLS, max_size=3), max_size=4))))


@COMMANDS
@given(HOSTILE)
def test_quality_on_any_hostile_file_answers_cleanly_and_loses_nothing(tmp_path_factory, previous_run, case):
    name, text = case
    folder = tmp_path_factory.mktemp("hostile")
    source = folder / name
    source.write_text(text, encoding="utf-8", errors="surrogatepass")
    out = folder / "out"
    out.mkdir()
    for path in previous_run.iterdir():
        (out / path.name).write_bytes(path.read_bytes())
    before = digests(out)
    outcome = run_cli("quality", "--users", source, "--sis", "none", "--out", out, "--quiet", "--no-duplicates")
    check_contract(outcome, "quality")
    if outcome.code == 1:
        assert digests(out) == before  # a failed run wrote nothing over the last good one


@COMMANDS
@given(st.lists(st.sampled_from(["cluster_id", "primary_id", "match_probability", "evidence", "x"]), min_size=1,
                max_size=4, unique=True), st.lists(st.lists(CELLS, max_size=5), max_size=5))
def test_merge_list_on_any_hostile_findings_folder_answers_cleanly(tmp_path_factory, header, rows):
    folder = tmp_path_factory.mktemp("findings")
    (folder / "duplicates.csv").write_text(csv_text(header, rows), encoding="utf-8", errors="surrogatepass")
    outcome = run_cli("merge-list", "--findings", folder, "--out", folder / "worklist")
    check_contract(outcome, "merge-list")


@COMMANDS
@given(st.lists(st.sampled_from(["affiliation", "first_name", "last_name", "primary_id", "user_group",
                                 "email_address", "birth_date", "password"]), min_size=1, max_size=6, unique=True),
       st.lists(st.lists(CELLS, max_size=7), max_size=4))
def test_register_dry_run_on_any_hostile_csv_answers_cleanly(tmp_path_factory, sandbox, header, rows):
    folder = tmp_path_factory.mktemp("register")
    path = folder / "patrons.csv"
    path.write_text(csv_text(header, rows), encoding="utf-8", errors="surrogatepass")
    outcome = run_cli("register", "--csv", path, "--dry-run", "--quiet")
    check_contract(outcome, "register")
    issues = folder / "patrons.issues.csv"
    if "password" in header and issues.exists():  # a password is never written anywhere
        at = header.index("password")
        written = issues.read_text(encoding="utf-8")
        for row in rows:
            if len(row) > at and len(row[at].strip()) >= 8:
                assert row[at].strip() not in written
