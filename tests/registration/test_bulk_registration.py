"""Bulk registration: validation first, the issue file, the journal, resuming after a quota stop or a
killed process (under injected faults), and no password in any file."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from registration_helpers import DEFAULT, TODAY, fresh_id, good_form, token

from almatools.bulk import CALLS_PER_ROW, register_csv
from almatools.client import AlmaClient

COLUMNS = ["affiliation", "first_name", "last_name", "primary_id", "expiry_date", "email_address", "password"]
LOCAL = ("community", "alum", "friend", "reciprocal")


def good_rows(client, n: int, last_name: str) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        affiliation = "student" if i % 10 == 0 else LOCAL[i % len(LOCAL)]  # some SIS-managed, most local
        p = good_form(client, DEFAULT, affiliation, last_name=last_name)
        rows.append({"affiliation": affiliation, "first_name": p.first_name, "last_name": p.last_name,
                     "primary_id": p.primary_id, "expiry_date": p.expiry_date.isoformat(),
                     "email_address": p.email_address, "password": f"{p.password}{i}" if p.password else ""})
    return rows


def bad_row(client, kind: int, template: dict[str, str], earlier: dict[str, str]) -> dict[str, str]:
    """A row that validation must refuse, one of six kinds (with an identifier of its own but for the last)."""
    group = DEFAULT.groups[DEFAULT.affiliations[template["affiliation"]].group]
    row = {**template, "first_name": token(), "email_address": f"{token().lower()}@example.org",
           "primary_id": fresh_id(client, group)}
    if kind == 0:
        row["last_name"] = ""
    elif kind == 1:
        row["primary_id"] = "X" + row["primary_id"]
    elif kind == 2:
        row["email_address"] = "not-an-address@"
    elif kind == 3:
        row["expiry_date"] = (TODAY - timedelta(days=3)).isoformat()
    elif kind == 4:
        row["password"] = "short1" if row["affiliation"] != "student" else "Sis-users-have-none1"
    else:
        row["primary_id"] = earlier["primary_id"].lower()  # the same person twice in one file
    return row


def write(path, rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def error_rows(issues_path) -> set[int]:
    with issues_path.open(newline="", encoding="utf-8") as handle:
        return {int(r["row"]) for r in csv.DictReader(handle) if r["severity"] == "error"}


def test_validation_first_then_create_and_an_issue_file(client, tmp_path):
    last = token(10)
    rows = good_rows(client, 6, last)
    rows.insert(3, bad_row(client, 0, rows[0], rows[0]))
    rows.append(bad_row(client, 5, rows[1], rows[1]))
    write(tmp_path / "in.csv", rows)
    before = client.calls
    result = register_csv(client, tmp_path / "in.csv", DEFAULT, out_dir=tmp_path / "out", today=TODAY)
    assert (result.created, result.invalid, result.refused, result.stopped) == (6, 2, 0, "")
    assert result.calls <= 6 * CALLS_PER_ROW + 1 and client.calls - before == result.calls
    assert error_rows(result.issues_path) == {5, 9}  # spreadsheet rows: the header is row 1
    assert "DUPLICATE_IN_FILE" in result.issues_path.read_text(encoding="utf-8")
    assert {u["primary_id"] for u in client.search_users(last_name=last)} == {r["primary_id"] for r in rows[:3] + rows[4:7]}


def test_a_dry_run_keeps_its_own_journal(sandbox, client, tmp_path):
    rows = good_rows(client, 3, token(10))
    write(tmp_path / "in.csv", rows)
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=500, dry_run=True) as dry:
        planned = register_csv(dry, tmp_path / "in.csv", DEFAULT, today=TODAY)
    assert planned.created == 3 and planned.journal_path.name == "in.dry-run.journal.jsonl"
    assert all(client.find_user(r["primary_id"]) is None for r in rows)
    real = register_csv(client, tmp_path / "in.csv", DEFAULT, today=TODAY)
    assert real.created == 3 and real.already_done == 0


def test_rows_reordered_between_runs_still_resume(client, tmp_path):
    rows = good_rows(client, 4, token(10))
    write(tmp_path / "in.csv", rows[:2])
    assert register_csv(client, tmp_path / "in.csv", DEFAULT, today=TODAY).created == 2
    write(tmp_path / "in.csv", [rows[2], rows[1], rows[3], rows[0]])  # new rows in between, order changed
    again = register_csv(client, tmp_path / "in.csv", DEFAULT, today=TODAY)
    assert (again.created, again.already_done, again.refused) == (2, 2, 0)


def test_a_journal_line_cut_short_by_a_crash_is_looked_up_again(client, tmp_path):
    rows = good_rows(client, 2, token(10))
    write(tmp_path / "in.csv", rows)
    first = register_csv(client, tmp_path / "in.csv", DEFAULT, today=TODAY)
    journal = first.journal_path
    lines = journal.read_text(encoding="utf-8").splitlines()
    # As if killed while writing: the last "created" is half there, no newline.
    journal.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:25], encoding="utf-8")
    again = register_csv(client, tmp_path / "in.csv", DEFAULT, today=TODAY)
    assert again.already_done + again.created == 2 and again.refused == 0
    after = journal.read_text(encoding="utf-8").splitlines()
    assert after[:len(lines) - 1] == lines[:-1]  # the torn line is cut off (files.AppendLog), the rest kept
    entries = [json.loads(line) for line in after[len(lines) - 1:]]
    assert entries and entries[-1]["status"] == "created"


def test_an_exhausted_quota_stops_the_run_and_a_rerun_resumes(client, knobs, tmp_path):
    last = token(10)
    rows = good_rows(client, 24, last)
    write(tmp_path / "in.csv", rows)
    knobs.daily_limit = 10**9
    done = []

    def other_jobs_use_up_the_day(number: int, outcome: str) -> None:
        done.append(number)
        if len(done) == 3:  # the budget check passed; now the day's calls run out under the run's feet
            knobs.daily_limit = (10**9 - client.remaining) + 20

    stopped = register_csv(client, tmp_path / "in.csv", DEFAULT, today=TODAY, reserve=0, workers=4,
                           on_row=other_jobs_use_up_the_day)
    assert stopped.stopped and "used up" in stopped.stopped
    assert 0 < stopped.created < 24
    knobs.daily_limit = 10**9  # the next day
    resumed = register_csv(client, tmp_path / "in.csv", DEFAULT, today=TODAY, workers=4)
    assert resumed.complete and resumed.already_done == stopped.created
    assert resumed.created == 24 - stopped.created and resumed.refused == 0
    found = [u["primary_id"] for u in client.search_users(last_name=last)]
    assert sorted(found) == sorted(r["primary_id"] for r in rows)


def _run(csv_path, out_dir, env) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "almatools", "register", "--csv", str(csv_path), "--out", str(out_dir),
           "--workers", "16", "--quiet"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_1000_rows_with_faults_and_a_killed_run_create_everyone_exactly_once(client, knobs, tmp_path):
    last = token(12)
    good = good_rows(client, 950, last)
    rows, bad_numbers = [], set()
    for i, row in enumerate(good):
        rows.append(row)
        if i % 19 == 18:  # 50 bad rows spread through the file
            rows.append(bad_row(client, len(bad_numbers) % 6, good[i - 1], good[i - 5]))
            bad_numbers.add(len(rows) + 1)
    assert len(rows) == 1000 and len(bad_numbers) == 50
    source, out = tmp_path / "in" / "patrons.csv", tmp_path / "out"
    source.parent.mkdir()
    write(source, rows)
    env = {**os.environ, "ALMA_PER_SECOND": "2000", "PYTHONUNBUFFERED": "1"}
    journal = out / "patrons.journal.jsonl"
    knobs.fault_rate = 0.10

    first = _run(source, out, env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.poll() is None:
        if journal.exists() and journal.read_text(encoding="utf-8").count("\n") >= 300:
            break
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    created_before = sum(1 for line in journal.read_text(encoding="utf-8").splitlines() if '"created"' in line)
    assert 0 < created_before < 950
    outputs = []
    for _ in range(4):  # a run that met a passing fault too often says so (exit 1); run it again
        rerun = _run(source, out, env)
        outputs += list(rerun.communicate(timeout=240))
        if rerun.returncode != 1:
            break
    assert rerun.returncode == 3, outputs[-1]  # done, with invalid rows to report

    knobs.fault_rate = 0.0
    found = [u["primary_id"] for u in client.search_users(last_name=last)]
    assert len(found) == len(set(found)) == 950
    assert set(found) == {r["primary_id"] for r in good}
    assert error_rows(out / "patrons.issues.csv") == bad_numbers
    for row in (rows[n - 2] for n in bad_numbers):
        stored = client.find_user(row["primary_id"].removeprefix("X"))
        same_as_a_good_row = row["primary_id"].upper() in {r["primary_id"] for r in good}
        assert (stored is None) != same_as_a_good_row
        assert stored is None or stored["first_name"] != row["first_name"]
    state = {}
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        state[entry["primary_id"].casefold()] = entry["status"]
    assert {state[r["primary_id"].casefold()] for r in good} == {"created"}
    passwords = {r["password"] for r in rows if r["password"]}
    written = [p.read_text(encoding="utf-8") for p in out.iterdir()] + outputs
    assert len(passwords) > 500 and not [pw for pw in passwords if any(pw in text for text in written)]


def test_a_key_refused_on_writes_stops_the_run_and_a_rerun_with_a_good_key_creates_everyone(client, knobs, tmp_path):
    # A read-only key (the sandbox's read_only knob) reads fine, and every write gets Alma's UNAUTHORIZED:
    # the run must stop at once, with nothing journaled as refused, so that the same command with a key
    # that may write creates every row (a "refused" row is never sent again).
    last = token(10)
    rows = good_rows(client, 6, last)
    write(tmp_path / "in.csv", rows)
    knobs.read_only = True
    stopped = register_csv(client, tmp_path / "in.csv", DEFAULT, today=TODAY, reserve=0, workers=2)
    assert stopped.stopped and "API key" in stopped.stopped and stopped.created == 0 and stopped.refused == 0
    knobs.read_only = False
    resumed = register_csv(client, tmp_path / "in.csv", DEFAULT, today=TODAY, reserve=0, workers=2)
    assert resumed.complete and resumed.created == 6 and resumed.refused == 0
    found = [u["primary_id"] for u in client.search_users(last_name=last)]
    assert sorted(found) == sorted(r["primary_id"] for r in rows)


def test_one_person_twice_in_a_file_under_two_identifiers_gets_one_account(client, tmp_path):
    """The rows are sent at once, so the search before each POST cannot see the other row: the file is checked
    against itself. The same email, or the same name and birth date, under another identifier is refused."""
    last = token(10)
    rows = good_rows(client, 4, last)
    local = [r for r in rows if r["affiliation"] != "student"]
    first, second = local[0], local[1]
    again_email = {**first, "primary_id": fresh_id(client, DEFAULT.groups[DEFAULT.affiliations[first["affiliation"]].group]),
                   "first_name": first["first_name"] + "a", "email_address": first["email_address"].upper()}
    columns = [*COLUMNS, "birth_date"]
    second = {**second, "birth_date": "1971-02-03"}
    again_name = {**second, "primary_id": fresh_id(client, DEFAULT.groups[DEFAULT.affiliations[second["affiliation"]].group]),
                  "email_address": f"{token().lower()}@example.org"}
    table = [{**r, "birth_date": r.get("birth_date", "")} for r in (first, second, again_email, again_name)]
    with (tmp_path / "in.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)
    result = register_csv(client, tmp_path / "in.csv", DEFAULT, today=TODAY)
    assert (result.created, result.invalid) == (2, 2)
    with result.issues_path.open(newline="", encoding="utf-8") as handle:
        issues = {int(r["row"]): r for r in csv.DictReader(handle)}
    assert issues[4]["rule"] == "DUPLICATE_IN_FILE" and issues[4]["field"] == "email_address"
    assert f"Row 2 ({first['primary_id']}) has the same email address" in issues[4]["message"]
    assert issues[5]["field"] == "birth_date" and "the same name and birth date" in issues[5]["message"]
    assert {u["primary_id"] for u in client.search_users(last_name=last)} >= {first["primary_id"]}
    assert client.find_user(again_email["primary_id"]) is None and client.find_user(again_name["primary_id"]) is None
