"""``almatools report``: runs of the report pipeline (built in, and a notebook by papermill), the files they
leave, and their numbers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from _report_data import (
    AS_OF,
    count,
    keys_of,
    page,
    read_csv,
    run_report,
    runs,
    table_counts,
)
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from almatools.quality import RULES
from almatools.reports import SECTIONS

FILES = {"report.html", "report.xlsx", "findings.csv", "duplicates.csv", "merge_proposals.csv",
         "summary.json", "summary.txt", "run.json", "finding_keys.json"}


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its content (symlinks by their target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            out[str(path.relative_to(root))] = f"-> {path.readlink()}".encode()
        elif path.is_file():
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


@pytest.mark.slow
def test_with_no_sources_it_reports_on_the_sandbox(sandbox, tmp_path, capsys):
    root = tmp_path / "reports"
    assert run_report(root) == 0
    out = capsys.readouterr().out
    (run,) = runs(root)
    assert f"Report {run.name}:" in out and str(run / "report.html") in out
    assert FILES <= {p.name for p in run.iterdir()}
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["users"] >= 5000 and summary["sis_users"] and summary["duplicates"] == "done"
    findings = read_csv(run / "findings.csv")
    doc = page(run / "report.html")
    assert count(doc, "users") == summary["users"] and count(doc, "findings") == len(findings) > 0
    # the root: one history line, latest pointers, no temporary folder, and the API key nowhere
    history = (root / "history.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(history) == 1 and json.loads(history[0])["run"] == run.name
    assert (root / "latest.txt").read_text(encoding="utf-8").strip() == run.name
    assert (root / "latest").resolve() == run.resolve()
    assert not list(root.glob(".tmp-*"))
    key = sandbox.api_key.encode()
    assert [name for name, data in tree(root).items() if key in data] == []


@pytest.mark.slow
def test_a_notebook_given_with_notebook_runs_by_papermill_and_is_kept(sandbox, tmp_path, capsys):
    root = tmp_path / "reports"
    notebook = Path(__file__).parents[2] / "notebooks" / "04_data_quality_report.ipynb"
    assert run_report(root, "--notebook", str(notebook)) == 0
    (run,) = runs(root)
    assert FILES | {"report.ipynb"} <= {p.name for p in run.iterdir()}
    # the executed notebook is an output: papermill's parameters and every cell's outputs are in it
    nb = json.loads((run / "report.ipynb").read_text(encoding="utf-8"))
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "run_dir = " in "".join(injected[0]["source"])
    assert all(c["execution_count"] for c in nb["cells"] if c["cell_type"] == "code")
    assert "SANDBOX" in json.dumps(nb["cells"])  # the banner
    history = (root / "history.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(history) == 1 and json.loads(history[0])["run"] == run.name
    assert sandbox.api_key.encode() not in b"".join(tree(root).values())
    assert run_report(root, "--notebook", str(tmp_path / "missing.ipynb")) == 1
    assert "Cannot find the report notebook" in capsys.readouterr().err


def test_the_html_numbers_equal_those_in_the_csvs(history_root):
    for run in runs(history_root):
        findings = read_csv(run / "findings.csv")
        duplicates = read_csv(run / "duplicates.csv")
        proposals = read_csv(run / "merge_proposals.csv")
        doc = page(run / "report.html")
        by_rule = Counter(findings["rule_id"])
        assert table_counts(doc, "table-by-rule", "rule") == {r: by_rule.get(r, 0) for r in RULES}
        assert table_counts(doc, "table-by-severity", "severity") == {
            s: int((findings["severity"] == s).sum()) for s in ("error", "warning", "info")}
        groups = Counter(findings["user_group"].replace("", "(none)"))
        assert {g: n for g, n in table_counts(doc, "table-by-group", "group").items() if n} == dict(groups)
        assert count(doc, "findings") == len(findings) and len(findings) > 0
        assert count(doc, "records_with_findings") == findings["primary_id"].nunique()
        for severity in ("error", "warning", "info"):
            assert count(doc, f"severity-{severity}") == int((findings["severity"] == severity).sum())
        assert count(doc, "duplicate_clusters") == duplicates["cluster_id"].nunique() > 0
        assert count(doc, "merge_proposals") == len(proposals) > 0
        top = doc.xpath('//table[@id="table-top"]//tr[td]')
        assert len(top) == min(50, len(findings))
        shown = {c.get("data-cluster") for c in doc.xpath('//div[@data-cluster]')}
        assert shown == set(duplicates["cluster_id"])  # fewer than 50 clusters: all are shown
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
        assert summary["findings"] == len(findings) and summary["by_rule"] == {r: by_rule.get(r, 0) for r in RULES}
        assert {h.text_content().strip() for h in doc.xpath("//section/h2")} == {h for _, h in SECTIONS}


def test_each_run_adds_to_the_history_and_marks_new_and_resolved_findings(history_root):
    first, second = runs(history_root)
    old, new = read_csv(first / "findings.csv"), read_csv(second / "findings.csv")
    old_keys, new_keys = set(keys_of(old)), keys_of(new)
    expected_new = [k not in old_keys for k in new_keys]
    expected_resolved = old_keys - set(new_keys)
    assert any(expected_new) and expected_resolved, "the later day should add and remove findings"

    doc = page(second / "report.html")
    assert count(doc, "new") == sum(expected_new)
    assert count(doc, "resolved") == len(expected_resolved)
    resolved_rows = doc.xpath('//table[@id="table-resolved"]//tr[td]')
    assert len(resolved_rows) == min(50, len(expected_resolved))
    listed = {(r.xpath("td")[0].text_content(), r.xpath("td")[2].text_content().casefold()) for r in resolved_rows}
    assert listed <= {(k[0], k[1]) for k in expected_resolved}  # unmasked: the records by their ids
    assert "June 2026" in page(first / "report.html").text_content()
    assert "August 2027" in doc.text_content()

    # per finding: the workbook's "new_since_last_run", one sheet per rule, in findings.csv order
    book = load_workbook(second / "report.xlsx", read_only=True)
    for rule in RULES:
        rows = list(book[rule].iter_rows(values_only=True))
        flags = [r[rows[0].index("New since the last run")] for r in rows[1:]]  # headings are for people
        want = ["yes" if f else "no" for f, r in zip(expected_new, new["rule_id"]) if r == rule]
        assert flags == want, rule
    book.close()
    first_book = load_workbook(first / "report.xlsx", read_only=True)
    assert {r[-1] for r in list(first_book["DUPLICATE"].iter_rows(values_only=True))[1:]} <= {None, ""}
    first_book.close()

    history = [json.loads(line) for line in (history_root / "history.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [h["run"] for h in history] == [first.name, second.name]
    assert history[0]["previous_run"] is None and history[0]["new"] is None
    assert history[1]["previous_run"] == first.name
    assert (history[1]["new"], history[1]["resolved"]) == (sum(expected_new), len(expected_resolved))
    assert [h["findings"] for h in history] == [len(old), len(new)]
    assert history[0]["today"] == AS_OF.isoformat()
    trend = doc.xpath('//table[@id="table-trend"]//tr[td]')
    assert [number.text_content() for number in (row.xpath("td")[3] for row in trend)] == [
        f"{len(new):,}", f"{len(old):,}"]
    last = json.loads((history_root / "last_findings.json").read_text(encoding="utf-8"))
    assert last["run"] == second.name and len(last["keys"]) == len(set(new_keys))
    assert (history_root / "latest.txt").read_text(encoding="utf-8").strip() == second.name
    # the history holds no personal data: no primary id of either run appears in it
    text = (history_root / "history.jsonl").read_text(encoding="utf-8") + json.dumps(last)
    assert not [pid for pid in set(old["primary_id"]) | set(new["primary_id"]) if pid and f'"{pid}"' in text]


def test_the_workbook_has_a_sheet_per_rule_with_frozen_filtered_sized_headers(history_root):
    run = runs(history_root)[-1]
    findings = read_csv(run / "findings.csv")
    book = load_workbook(run / "report.xlsx")
    assert book.sheetnames[:2] == ["Summary", "By rule"]
    assert set(RULES) <= set(book.sheetnames)
    assert {"Duplicate clusters", "Merge proposals", "Resolved"} <= set(book.sheetnames)
    for rule in RULES:
        sheet = book[rule]
        assert sheet.max_row - 1 == int((findings["rule_id"] == rule).sum()), rule
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == sheet.dimensions
        header = [c.value for c in sheet[1]]
        assert header[:2] == ["Primary id", "Other record"] and "Problem" in header  # headings for people
        assert not [h for h in header if "_" in h]
        if sheet.max_row > 1:  # sized to the values (an empty sheet keeps narrow columns)
            message = get_column_letter(header.index("Problem") + 1)
            assert sheet.column_dimensions[message].width > 20, rule
    ids = {c.value for c in book["BAD_EMAIL"]["A"][1:]}
    assert ids == set(findings.loc[findings["rule_id"] == "BAD_EMAIL", "primary_id"])


@pytest.mark.slow
@pytest.mark.parametrize("broken, step", [("users", "loading the users source"), ("sis", "loading the SIS extract")])
def test_a_broken_source_fails_cleanly_and_writes_nothing(institution, history_root, tmp_path, capsys, broken, step):
    root = tmp_path / "reports"
    # a root with an earlier complete report, which must stay as it is
    import shutil

    shutil.copytree(history_root, root, symlinks=True)
    before = tree(root)
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 this is not a zip file")
    users = bad if broken == "users" else institution / "users_export.zip"
    sis = bad if broken == "sis" else institution / "sis_extract.zip"
    assert run_report(root, "--today", AS_OF.isoformat(), users=users, sis=sis) == 1
    err = capsys.readouterr().err
    assert f"almatools report: {step} ({bad}) failed" in err
    assert "Nothing was written" in err
    assert tree(root) == before  # no new run, no temporary folder, history and pointers unchanged
    assert not list(root.glob(".tmp-*"))


def test_bad_arguments_exit_1_before_anything_runs(tmp_path, capsys):
    root = tmp_path / "reports"
    assert run_report(root, "--today", "soon") == 1
    assert run_report(root, "--sis", "x.zip") == 1
    assert run_report(root, "--unmasked-csv") == 1
    err = capsys.readouterr().err
    assert "--today must be a date" in err and "--sis needs --users" in err and "--unmasked-csv goes with" in err
    assert not root.exists()
