"""``almatools quality`` and ``almatools snapshot``: the files, their columns, and the exit status."""

from __future__ import annotations

import json
import zipfile

import pandas as pd
import pytest
from _quality_data import institution

from almatools.cli import main
from almatools.quality import DUPLICATE_COLUMNS, FINDING_COLUMNS, RULES


@pytest.fixture(scope="module")
def data(sandbox_dir):
    return institution(sandbox_dir)


def quality(folder, out, *extra: str) -> int:
    return main(["quality", "--users", str(folder / "users_export.zip"), "--sis", str(folder / "sis_extract.zip"),
                 "--out", str(out), "--quiet", *extra])


def test_quality_writes_findings_duplicates_and_a_summary(data, tmp_path, capsys):
    folder, today = data
    assert quality(folder, tmp_path, "--today", today.isoformat()) == 0
    findings = pd.read_csv(tmp_path / "findings.csv", dtype=str, keep_default_na=False)
    duplicates = pd.read_csv(tmp_path / "duplicates.csv", dtype=str, keep_default_na=False)
    assert list(findings.columns) == list(FINDING_COLUMNS)
    assert list(duplicates.columns) == list(DUPLICATE_COLUMNS)
    truth = pd.read_csv(folder / "ground_truth.csv", dtype=str, keep_default_na=False)
    assert set(truth.loc[truth["rule_id"] == "STALE_SIS_MISSING", "primary_id"]) == set(
        findings.loc[findings["rule_id"] == "STALE_SIS_MISSING", "primary_id"])
    assert len(duplicates) and duplicates["match_probability"].astype(float).between(0, 1).all()
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["today"] == today.isoformat() and summary["findings"] == len(findings)
    assert set(summary["by_rule"]) == set(RULES) and summary["duplicates"] == "done"
    assert (tmp_path / "summary.txt").read_text(encoding="utf-8").startswith("Data-quality findings as of")
    assert "Findings:" in capsys.readouterr().out
    assert not (tmp_path / "load_errors.csv").exists()


def test_bad_records_are_reported_and_the_run_still_succeeds(data, tmp_path, capsys):
    folder, today = data
    users = tmp_path / "users.zip"
    with zipfile.ZipFile(folder / "users_export.zip") as src, zipfile.ZipFile(users, "w") as dst:
        text = src.read(src.namelist()[0]).decode("utf-8").splitlines(keepends=True)
        text[5] = text[5].replace("<birth_date>", "<birth_date>x", 1) if "<birth_date>" in text[5] else \
            text[5].replace("<primary_id>", "<expiry_date>never</expiry_date><primary_id>", 1)
        dst.writestr("users_0001.xml", "".join(text))
    args = ["quality", "--users", str(users), "--sis", "none", "--out", str(tmp_path / "out"), "--quiet",
            "--no-duplicates", "--today", today.isoformat()]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"{users}:users_0001.xml, record 4" in err and "bad records were skipped" in err
    errors = pd.read_csv(tmp_path / "out" / "load_errors.csv")
    assert errors.loc[0, "record"] == 4 and errors.loc[0, "source"] == "users"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["sources"]["users"]["skipped"] == 1 and summary["sis_users"] is None
    assert "STALE_SIS_MISSING" in summary["rules_not_checked"]
    assert main([*args, "--strict"]) == 1


@pytest.mark.parametrize("flag, message", [("--users", "is not XML"), ("--sis", "is not XML"),
                                           ("--today", "must be a date")])
def test_errors_exit_1_with_a_message_naming_the_file(data, tmp_path, capsys, flag, message):
    folder, _ = data
    broken = tmp_path / "broken.xml"
    broken.write_text("not xml at all", encoding="utf-8")
    args = {"--users": str(folder / "users_export.zip"), "--sis": str(folder / "sis_extract.zip"), "--today": None}
    args[flag] = "soon" if flag == "--today" else str(broken)
    argv = ["quality", "--out", str(tmp_path / "out"), "--quiet", "--no-duplicates"]
    for name, value in args.items():
        if value is not None:
            argv += [name, value]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and (flag == "--today" or str(broken) in err)
    assert not (tmp_path / "out" / "findings.csv").exists()


def test_snapshot_command_then_quality_on_it(sandbox, tmp_path, capsys):
    out = tmp_path / "users.jsonl"
    assert main(["snapshot", "--out", str(out), "--quiet"]) == 0
    said = capsys.readouterr().out
    assert "SANDBOX" in said and f"{sandbox.store.count():,} users written" in said
    assert main(["snapshot", "--out", str(out), "--quiet"]) == 0
    assert "0 users written" in capsys.readouterr().out
    assert main(["quality", "--users", str(out), "--sis", "none", "--out", str(tmp_path / "q"), "--quiet",
                 "--no-duplicates"]) == 0
    summary = json.loads((tmp_path / "q" / "summary.json").read_text(encoding="utf-8"))
    assert summary["users"] == sandbox.store.count() and summary["duplicates"].startswith("not run")
