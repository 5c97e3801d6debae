"""almatools.reports without the notebook: masking, finding keys, the history, and the atomic run folder."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pandas as pd
import pytest
from _report_data import AS_OF, runs
from openpyxl import load_workbook

from almatools import reports as report
from almatools.policy import load_policy
from almatools.quality import analyse
from almatools.quality.frame import users_frame
from almatools.sources import load_sis, load_users

SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def analysed(institution):
    policy = load_policy(None)
    users = load_users(institution / "users_export.zip", policy=policy)
    sis = load_sis(institution / "sis_extract.zip", policy=policy)
    return analyse(users, sis, policy, today=AS_OF), sis


def person(pid: str, first: str, last: str, email: str, barcode: str) -> dict:
    return {"primary_id": pid, "first_name": first, "last_name": last, "user_group": {"value": "UGRAD"},
            "account_type": {"value": "INTERNAL"}, "contact_info": {"email": [{"email_address": email,
                                                                               "preferred": True}]},
            "user_identifier": [{"id_type": {"value": "BARCODE"}, "value": barcode}]}


def test_tokens_are_keyed_stable_and_cover_free_text():
    users = users_frame([person("AB123456", "Allen", "Ramirez", "allen.r@example.org", "29417043918757"),
                         person("CD654321", "Liz", "O'Brien-Huang", "liz@example.org", "29417000000001")])
    masker = report.Masker(SECRET)
    masker.learn(users)
    pid = masker.token("id", "AB123456")
    assert pid == masker.id("ab123456") == report.Masker(SECRET).token("id", "AB123456")
    assert pid != report.Masker(b"another secret, another token!!").token("id", "AB123456")
    text = ("The SIS sends this person as AB123456 (Allen Ramirez, FACULTY): same email allen.r@example.org; "
            "identifier 29417043918757; first name nickname (Liz/Elizabeth); O'Brien-Huang, unknown@else.net, "
            "expired on 2026-05-30; cluster C-a3ca1a4a1b.")
    masked = masker.text(text)
    for raw in ("AB123456", "Allen", "Ramirez", "allen.r@example.org", "29417043918757", "Liz", "O'Brien-Huang",
                "unknown@else.net"):
        assert raw not in masked, raw
    assert f"as {pid} (" in masked and masker.token("name", "Allen") in masked
    assert "expired on 2026-05-30" in masked and "FACULTY" in masked and "(" in masked
    assert "Elizabeth" in masked  # a name the records do not have is not guessed at
    masker.learn_clusters(["C-a3ca1a4a1b"])
    assert "C-a3ca1a4a1b" not in masker.text(text) and masker.cluster("C-a3ca1a4a1b") in masker.text(text)
    assert masker.name("Ramirez, Allen") == f"{masker.token('name', 'Ramirez')}, {masker.token('name', 'Allen')}"
    off = report.Masker(SECRET, enabled=False)
    assert off.text(text) == text and off.id("AB123456") == "AB123456"


def test_a_finding_key_ignores_case_and_the_order_of_a_duplicate_pair():
    key = report.finding_key
    assert key(SECRET, "DUPLICATE", "A1", "b2", "") == key(SECRET, "DUPLICATE", "B2", "a1", "")
    assert key(SECRET, "ID_COLLISION", "A1", "B2", "identifiers") != key(SECRET, "ID_COLLISION", "B2", "A1",
                                                                         "identifiers")
    assert key(SECRET, "MISSING_FIELD", "A1", "", "first_name") != key(SECRET, "MISSING_FIELD", "A1", "", "last_name")


def test_the_history_skips_a_torn_line(tmp_path):
    (tmp_path / report.HISTORY_FILE).write_text('{"run": "a", "findings": 3}\n{"run": "b", "fin', encoding="utf-8")
    assert [h["run"] for h in report.read_history(tmp_path)] == ["a"]
    assert report.read_last_findings(tmp_path) is None


def test_an_incomplete_run_is_removed_and_leaves_the_root_as_it_was(tmp_path):
    run = report.start_run(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    (run.folder / "report.html").write_text("half", encoding="utf-8")  # no run.json: not complete
    with pytest.raises(report.ReportError, match="incomplete"):
        report.finish_run(run)
    assert sorted(p.name for p in tmp_path.iterdir() if p != run.folder) == [n for n in before
                                                                          if n != run.folder.name]
    assert not run.folder.exists() and not (tmp_path / report.HISTORY_FILE).exists()


def test_a_run_that_cannot_be_recorded_is_removed(tmp_path, monkeypatch, analysed):
    result, sis = analysed
    run = report.start_run(tmp_path)
    data = report.build_report(result, None, root=tmp_path, sis=sis)
    report.write_report(data, run.folder, result=result)

    def refuse(path, line):
        raise OSError("disk full")
    monkeypatch.setattr(report.runs, "_append_line", refuse)
    with pytest.raises(report.ReportError, match="disk full"):
        report.finish_run(run)
    assert runs(tmp_path) == [] and not list(tmp_path.glob(".tmp-*"))


def test_a_step_names_itself_and_its_source():
    with pytest.raises(report.ReportError) as caught:
        with report.step("loading the users source", "/data/users.zip"):
            raise ValueError("not a zip file")
    assert str(caught.value) == "loading the users source (/data/users.zip) failed: ValueError: not a zip file"
    assert caught.value.step == "loading the users source" and caught.value.source == "/data/users.zip"


def test_unmasked_csvs_only_when_asked_and_cells_are_never_formulas(tmp_path, analysed):
    result, sis = analysed
    result = dataclasses.replace(result, findings=result.findings.copy())
    result.findings.loc[0, "message"] = '=HYPERLINK("http://example.org","x")'
    for ask in (False, True):
        folder = tmp_path / f"asked-{ask}"
        worklist = report.merge_proposals(result, sis)
        data = report.build_report(result, worklist, root=tmp_path, sis=sis, mask=True)
        files = report.write_report(data, folder, result=result, worklist=worklist, unmasked_csv=ask)
        assert (folder / "unmasked").exists() is ask
        assert ("unmasked/findings.csv" in files and "unmasked/merge_proposals.csv" in files) is ask
        if ask:
            raw = pd.read_csv(folder / "unmasked" / "findings.csv", dtype=str, keep_default_na=False)
            assert list(raw["primary_id"]) == list(result.findings["primary_id"])
            pairs = pd.read_csv(folder / "unmasked" / "merge_proposals.csv", dtype=str, keep_default_na=False)
            assert list(pairs["from_primary_id"]) == [p.from_id for p in worklist.pairs()] and len(pairs)
        masked = pd.read_csv(folder / "findings.csv", dtype=str, keep_default_na=False)
        assert not set(masked["primary_id"]) & set(result.findings["primary_id"])
        entry = json.loads((folder / report.RUN_FILE).read_text(encoding="utf-8"))
        assert entry["masked"] is True and entry["findings"] == len(result.findings)
    book = load_workbook(tmp_path / "asked-False" / "report.xlsx")
    rule = result.findings.loc[0, "rule_id"]
    cell = book[rule].cell(row=2, column=7)
    assert cell.value.startswith("=HYPERLINK") and cell.data_type == "s"
    html = (tmp_path / "asked-False" / "report.html").read_text(encoding="utf-8")
    assert "http://example.org" not in html.split("<body>")[0]  # no external resource in the page's head
    assert "<script" not in html and "src=" not in html and "@import" not in html


def test_a_first_run_has_no_new_or_resolved_and_the_trend_starts(analysed):
    result, sis = analysed
    data = report.build_report(result, None, sis=sis, history=[], last=None, secret=SECRET)
    assert data.previous_run is None and data.summary["new"] == 0 and data.summary["resolved"] == 0
    assert data.findings["new"].isna().all() and len(data.trend) == 1
    assert data.entry["new"] is None and data.entry["findings"] == len(result.findings)
    assert data.entry["today"] == AS_OF.isoformat() and date.fromisoformat(data.entry["today"])
    assert "First run" in data.summary_text()


def test_a_failure_while_writing_leaves_nothing_behind(tmp_path, monkeypatch, analysed):
    result, sis = analysed
    root = tmp_path / "reports"
    run = report.start_run(root)
    before = sorted(p.name for p in root.iterdir() if p != run.folder)

    def full_disk(data, path):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(report.outputs, "write_xlsx", full_disk)
    data = report.build_report(result, None, root=root, sis=sis)
    with pytest.raises(report.ReportError, match=r"writing the report files \(.*\) failed: OSError"):
        with report.step("writing the report files", run.folder):
            report.write_report(data, run.folder, result=result)
    assert (run.folder / "report.html").exists()  # half written, in the temporary folder only
    report.abandon_run(run)
    assert sorted(p.name for p in root.iterdir()) == before == [report.SECRET_FILE]


def test_chart_labels_are_escaped():
    svg = report.bar_chart([("<script>alert(1)</script>", 3), ("B&B", 1)], label="x")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "B&amp;B" in svg
    assert report.line_chart(["a"], {"all": [None]}, label="x").startswith("<p")


def test_a_damaged_history_line_before_the_end_is_an_error_naming_it(tmp_path):
    (tmp_path / report.HISTORY_FILE).write_text('{"run": "a"}\nnot json\n{"run": "c"}\n', encoding="utf-8")
    with pytest.raises(report.ReportError, match="line 2"):
        report.read_history(tmp_path)
