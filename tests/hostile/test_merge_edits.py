"""A merge worklist edited by hand: ``merge-verify`` refuses what is unsafe, with one clear line, and never
says Done unless the FROM it proposed is gone and its TO is there."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from _hostile import check_contract, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from almatools import merge
from almatools.files import write_csv
from almatools.quality.frame import users_frame

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "merge"))
from merge_data import STANDARD_CLUSTERS, STANDARD_SIS, STANDARD_USERS  # noqa: E402


def saved_worklist(folder: Path) -> merge.Worklist:
    """The standard worklist with P0003 (OLD → NEW) and P0004 (A → B) approved, and its proposals.csv."""
    worklist = merge.propose(merge_clusters(), users_frame(STANDARD_USERS), STANDARD_SIS, folder=folder)
    write_csv(worklist.to_frame(), folder / "proposals.csv")  # as merge-list writes it, before the review
    worklist.approve("P0003", reviewer="kim")
    worklist.approve("P0004", reviewer="kim")
    return worklist


def merge_clusters():
    from merge_data import clusters_frame

    return clusters_frame(STANDARD_CLUSTERS)


def edit_json(path: Path, change) -> None:
    body = json.loads(path.read_text(encoding="utf-8"))
    change(body)
    path.write_text(json.dumps(body), encoding="utf-8")


def pair(body: dict, pair_id: str) -> dict:
    return next(p for p in body["pairs"] if p["pair_id"] == pair_id)


EDITS = {
    "from-typo": (lambda b: pair(b, "P0003").update(from_id="OLDD"), "'OLDD' is not one of the records"),
    "from-equals-to": (lambda b: pair(b, "P0004").update(from_id="B"), "FROM and TO are the same record (B)"),
    "unknown-to": (lambda b: pair(b, "P0004").update(to_id="ZZZ"), "TO 'ZZZ' is not one of the records"),
    "changed-pair": (lambda b: pair(b, "P0004").update(from_id="NEW", to_id="A"),
                     "was approved as A → B but now reads NEW → A"),
}


@pytest.mark.parametrize("edit", EDITS, ids=EDITS.keys())
def test_verify_refuses_a_worklist_edited_into_something_unsafe(tmp_path, edit):
    worklist = saved_worklist(tmp_path / "wl")
    change, expected = EDITS[edit]
    edit_json(tmp_path / "wl" / merge.PROPOSALS_FILE, change)
    reopened = merge.Worklist.load(tmp_path / "wl")
    assert any(expected in p for p in merge.worklist_problems(reopened)), merge.worklist_problems(reopened)
    with pytest.raises(merge.MergeError, match="edited into something unsafe") as err:
        merge.verify(reopened, client=None)  # refused before any call to Alma
    assert "\n" not in str(err.value)
    assert worklist.pair_ids  # the original is untouched in memory


def test_edits_to_proposals_csv_are_refused_not_ignored(tmp_path):
    saved_worklist(tmp_path / "wl")
    path = tmp_path / "wl" / "proposals.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rows[0]["status"] = "approved"
    rows[1]["from_primary_id"] = "S3"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    problems = merge.worklist_problems(merge.Worklist.load(tmp_path / "wl"))
    assert any("status 'approved'" in p for p in problems) and any("reads 'S3'" in p for p in problems)


def test_an_untouched_worklist_has_no_problems(tmp_path):
    saved_worklist(tmp_path / "wl")
    assert merge.worklist_problems(merge.Worklist.load(tmp_path / "wl")) == []


DAMAGE = {
    "not-json": lambda d: (d / merge.PROPOSALS_FILE).write_text("{", encoding="utf-8"),
    "a-list": lambda d: (d / merge.PROPOSALS_FILE).write_text("[1, 2]", encoding="utf-8"),
    "no-pairs": lambda d: edit_json(d / merge.PROPOSALS_FILE, lambda b: b.pop("pairs")),
    "pair-not-object": lambda d: edit_json(d / merge.PROPOSALS_FILE, lambda b: b["pairs"].append("P9")),
    "pair-without-from": lambda d: edit_json(d / merge.PROPOSALS_FILE, lambda b: b["pairs"][0].pop("from_id")),
    "records-a-list": lambda d: edit_json(d / merge.PROPOSALS_FILE, lambda b: b.update(records=[])),
    "twice": lambda d: edit_json(d / merge.PROPOSALS_FILE, lambda b: b["pairs"].append(dict(b["pairs"][0]))),
    "journal-list": lambda d: (d / merge.JOURNAL_FILE).write_text("[1]\n", encoding="utf-8"),
    "journal-verify-without-merged": lambda d: (d / merge.JOURNAL_FILE).write_text(
        '{"op": "verify", "pair_id": "P0003"}\n{"op": "note", "pair_id": "P0003"}\n', encoding="utf-8"),
    "journal-facts-without-id": lambda d: (d / merge.JOURNAL_FILE).write_text(
        '{"op": "facts", "facts": {}}\n{"op": "note", "pair_id": "P0003"}\n', encoding="utf-8"),
    "deep": lambda d: (d / merge.PROPOSALS_FILE).write_text("[" * 100_000, encoding="utf-8"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=DAMAGE.keys())
def test_a_damaged_worklist_is_refused_with_a_merge_error_naming_the_file(tmp_path, damage):
    saved_worklist(tmp_path / "wl")
    DAMAGE[damage](tmp_path / "wl")
    with pytest.raises(merge.MergeError) as err:
        merge.Worklist.load(tmp_path / "wl")
    assert str(tmp_path / "wl") in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("damage", ["not-json", "pair-without-from", "journal-list", "deep"])
def test_merge_verify_answers_a_damaged_worklist_with_one_line(tmp_path, damage, sandbox):
    saved_worklist(tmp_path / "wl")
    DAMAGE[damage](tmp_path / "wl")
    outcome = run_cli("merge-verify", "--worklist", tmp_path / "wl")
    check_contract(outcome, "merge-verify")
    assert outcome.code == 1 and "Done" not in outcome.stdout
    assert str(tmp_path / "wl") in outcome.message


def test_merge_verify_never_says_done_for_a_from_edited_to_a_typo(tmp_path, sandbox):
    saved_worklist(tmp_path / "wl")
    edit_json(tmp_path / "wl" / merge.PROPOSALS_FILE, EDITS["from-typo"][0])
    outcome = run_cli("merge-verify", "--worklist", tmp_path / "wl")
    check_contract(outcome, "merge-verify")
    assert outcome.code == 1 and "Done" not in outcome.stdout + outcome.stderr
    assert "'OLDD' is not one of the records" in outcome.message
    assert not (tmp_path / "wl" / "merge_verification.csv").exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.dictionaries(st.sampled_from(["op", "pair_id", "merged", "facts", "primary_id",
                                                            "from", "to", "text", "reviewer"]),
                                          st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                                                    st.sampled_from(["approve", "verify", "facts", "swap",
                                                                     "P0003", "P0004"]),
                                                    st.lists(st.integers(), max_size=2),
                                                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))),
                            st.integers(), st.text(max_size=5), st.lists(st.none(), max_size=2)), max_size=6))
def test_any_journal_loads_or_is_refused_with_a_merge_error(tmp_path_factory, events):
    folder = tmp_path_factory.mktemp("wl")
    saved_worklist(folder)
    (folder / merge.JOURNAL_FILE).write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    try:
        worklist = merge.Worklist.load(folder)
    except merge.MergeError as err:
        assert str(folder) in str(err)
        return
    merge.worklist_problems(worklist)
    worklist.to_frame()
