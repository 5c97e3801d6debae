"""`almatools merge-list` and `merge-verify`, through a parser built with add_merge_commands."""

from __future__ import annotations

import argparse
import json
import uuid

import pandas as pd
import pytest
from merge_data import alma_user

from almatools import merge
from almatools.cli.merge import add_merge_commands

DUPLICATES_COLUMNS = ["cluster_id", "primary_id", "match_probability", "evidence", "other_primary_ids", "first_name",
                      "last_name", "user_group", "account_type"]


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="almatools")
    add_merge_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def findings(tmp_path):
    """A findings folder as `almatools quality --out DIR` writes it: OLD is an SIS record the extract lost."""
    folder = tmp_path / "findings"
    folder.mkdir()
    rows = [["D1", "OLD", 0.98, "name;birth_date", "NEW", "Bo", "Ng", "UGRAD", "EXTERNAL"],
            ["D1", "NEW", 0.98, "name;birth_date", "OLD", "Bo", "Ng", "ALUMNI", "INTERNAL"],
            ["D2", "S1", 0.91, "name;email", "L1", "Ann", "Lee", "UGRAD", "EXTERNAL"],
            ["D2", "L1", 0.91, "name;email", "S1", "Ann", "Lee", "COMMUNITY", "INTERNAL"]]
    pd.DataFrame(rows, columns=DUPLICATES_COLUMNS).to_csv(folder / "duplicates.csv", index=False)
    pd.DataFrame([{"rule_id": "STALE_SIS_MISSING", "primary_id": "OLD", "severity": "warning", "message": "x"}]
                 ).to_csv(folder / "findings.csv", index=False)
    (folder / "summary.json").write_text("{}")
    return folder


def test_merge_list_writes_the_proposals(findings, tmp_path, capsys):
    out = tmp_path / "worklist"
    assert run(["merge-list", "--findings", str(findings), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "2 merge pairs proposed from 2 duplicate clusters" in said and "roles unknown" in said
    assert "0 fail a hard check" in said and "2 not checked: no users source" in said
    worklist = merge.Worklist.load(out)
    assert {(p.from_id, p.to_id) for p in worklist.pairs()} == {("OLD", "NEW"), ("L1", "S1")}
    assert {p.status for p in worklist.pairs()} == {"proposed"}
    proposals = pd.read_csv(out / "proposals.csv")
    assert set(proposals["status"]) == {"proposed"} and len(proposals) == 2


def test_merge_list_reads_users_and_requests(findings, tmp_path):
    users = tmp_path / "users.jsonl"
    users.write_text("\n".join(json.dumps(u) for u in [
        alma_user("OLD", "Bo", "Ng", account="EXTERNAL", expiry="2026-01-01"), alma_user("NEW", "Bo", "Ng"),
        alma_user("S1", account="EXTERNAL"), alma_user("L1", roles=("200", "21")), alma_user("X"),
        alma_user("Y")]) + "\n")
    requests = tmp_path / "requests.csv"
    requests.write_text("from_primary_id,to_primary_id,reason,requested_at,source\n"
                        "X,Y,new OneLink account,2025-03-01T10:00:00+00:00,registration\n")
    out = tmp_path / "worklist"
    assert run(["merge-list", "--findings", str(findings), "--users", str(users), "--requests", str(requests),
                "--out", str(out)]) == 0
    pairs = {p.from_id: p for p in merge.Worklist.load(out).pairs()}
    assert pairs["X"].to_id == "Y" and pairs["X"].source == "registration"
    assert [c.name for c in pairs["L1"].hard_failures] == ["from_patron_only"]  # staff role, from --users
    assert pairs["OLD"].approvable


def test_merge_list_will_not_throw_a_review_away(findings, tmp_path, capsys):
    out = tmp_path / "worklist"
    assert run(["merge-list", "--findings", str(findings), "--out", str(out)]) == 0
    assert run(["merge-list", "--findings", str(findings), "--out", str(out)]) == 0  # no decisions yet: fine
    merge.Worklist.load(out).reject("P0001", reviewer="kim")
    capsys.readouterr()
    assert run(["merge-list", "--findings", str(findings), "--out", str(out)]) == 1
    assert "has decisions" in capsys.readouterr().err
    assert merge.Worklist.load(out).pair("P0001").decision == "rejected"
    assert run(["merge-list", "--findings", str(findings), "--out", str(out), "--replace"]) == 0
    assert merge.Worklist.load(out).pair("P0001").decision == "proposed"


def test_errors_exit_1_with_a_clear_message(tmp_path, capsys):
    assert run(["merge-list", "--findings", str(tmp_path), "--out", str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("almatools merge-list: No duplicates.csv") and "almatools quality" in err
    assert run(["merge-verify", "--worklist", str(tmp_path / "none")]) == 1
    assert "No merge worklist" in capsys.readouterr().err


def test_help(capsys):
    for command in ("merge-list", "merge-verify"):
        with pytest.raises(SystemExit) as done:
            run([command, "--help"])
        assert done.value.code == 0
    assert "usage: almatools merge-verify" in capsys.readouterr().out


def test_merge_verify_against_the_sandbox(client, sandbox, tmp_path, capsys):
    tag = uuid.uuid4().hex[:6].upper()
    f, t = f"VF{tag}", f"VT{tag}"
    client.create_user(alma_user(f, "Vi", tag))
    client.create_user(alma_user(t, "Vi", tag, expiry="2031-01-01"))
    clusters = pd.DataFrame({"cluster_id": ["v", "v"], "primary_id": [f, t]})
    worklist = merge.propose(clusters, merge.users_from_api(client, [f, t]), set(), folder=tmp_path / "w")
    worklist.approve("P0001", reviewer="kim")
    assert run(["merge-verify", "--worklist", str(tmp_path / "w")]) == 1  # not merged yet
    captured = capsys.readouterr()
    assert "SANDBOX" in captured.out and "not done" in captured.err
    sandbox.store.merge(f, t)
    assert run(["merge-verify", "--worklist", str(tmp_path / "w")]) == 0
    assert "1 of 1 approved pairs done" in capsys.readouterr().out
    assert (tmp_path / "w" / "merge_verification.csv").is_file()
