"""No cell from data is ever a formula, and a masked report holds no raw value, however odd its shape.

The spreadsheets are read back with openpyxl (a formula cell has ``data_type == "f"``) and as raw sheet
XML (``<f>`` elements); the CSV files with the csv module, as a spreadsheet would see each cell.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from _files import FORMULAS, formula_registration, user_xml, users_file
from _hostile import check_contract, run_cli
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from almatools import merge
from almatools.files import safe_cell, unsafe_cell, unsafe_frame
from almatools.policy import load_policy
from almatools.quality import analyse
from almatools.quality.frame import users_frame

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "merge"))
from merge_data import alma_user, clusters_frame  # noqa: E402

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cells(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


def assert_no_formula_cells(path: Path) -> int:
    """Every cell of a CSV file is safe to open; returns how many cells were escaped."""
    cells = csv_cells(path)
    assert not [c for c in cells if c.startswith(TRIGGERS)], path
    return sum(1 for c in cells if c.startswith("'") and c[1:2] in TRIGGERS)


def assert_no_formulas_in_workbook(path: Path) -> int:
    """No formula cell in any sheet (openpyxl's view and the raw XML); returns the text cells from data
    that start with a formula character."""
    book = load_workbook(path)
    texts = 0
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (path.name, sheet.title, cell.coordinate, cell.value)
                texts += isinstance(cell.value, str) and cell.value.startswith(TRIGGERS)
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in zf.read(name) and b"<f " not in zf.read(name), name
    return texts


@given(st.text())
def test_escaping_round_trips_and_never_starts_with_a_formula_character(value):
    escaped = safe_cell(value)
    assert unsafe_cell(escaped) == value
    assert not escaped.startswith(TRIGGERS)


def test_the_escaping_test_can_fail():  # positive control: a raw formula is caught
    raw = Path(__file__).with_name("raw.csv")
    try:
        raw.write_text("name\n=1+1\n", encoding="utf-8")
        with pytest.raises(AssertionError):
            assert_no_formula_cells(raw)
    finally:
        raw.unlink()


def formula_worklist(folder: Path) -> merge.Worklist:
    users = [alma_user("F1", first=FORMULAS[0], last=FORMULAS[1], loans=1),
             alma_user("F2", first=FORMULAS[2], last=FORMULAS[3]),
             alma_user("F3", first=FORMULAS[4], last=FORMULAS[5])]
    worklist = merge.propose(clusters_frame({"c1": ["F1", "F2", "F3"]}), users_frame(users), {"f1"}, folder=folder)
    for pair_id in worklist.pair_ids:
        worklist.approve(pair_id, reviewer='=HYPERLINK("http://example.invalid","me")', note="=1+2")
    return worklist


def test_merge_exports_hold_no_formula_from_data(tmp_path):
    worklist = formula_worklist(tmp_path / "wl")
    files = merge.export_all(worklist)
    assert assert_no_formulas_in_workbook(files["review"]) >= 9  # names, notes and the reviewer, as text
    cells = {c.value for s in load_workbook(files["review"]).worksheets for r in s.iter_rows() for c in r}
    assert '=HYPERLINK("http://example.invalid","me")' in cells or any(
        isinstance(v, str) and '=HYPERLINK("http://example.invalid","me")' in v for v in cells)
    escaped = assert_no_formula_cells(tmp_path / "wl" / "merge_list.csv")
    assert escaped >= 4
    listed = unsafe_frame(pd.read_csv(tmp_path / "wl" / "merge_list.csv", dtype=str, keep_default_na=False))
    expected = {p.from_id: merge.records._name(worklist.record(p.from_id)) for p in worklist.pairs()}
    assert dict(zip(listed["from_primary_id"], listed["from_name"])) == expected  # read back unescaped
    assert any(name.startswith(TRIGGERS) for name in expected.values())


def test_quality_findings_and_merge_list_command_write_safe_csvs_the_kit_reads_back(tmp_path):
    users = users_file(tmp_path / "users.xml", [
        user_xml("=1+1", first=FORMULAS[0], last=FORMULAS[1], email="=x@example.org"),
        user_xml("+AL000001", first="Bo", last="-Ma", identifiers=(("BARCODE", "@123"),)),
        user_xml("plain", first="Cy", identifiers=(("BARCODE", "@123"),))])
    outcome = run_cli("quality", "--users", users, "--sis", "none", "--out", tmp_path / "q", "--quiet",
                      "--no-duplicates")
    check_contract(outcome, "quality")
    assert outcome.code == 0, outcome.stderr
    assert assert_no_formula_cells(tmp_path / "q" / "findings.csv") >= 3
    frame, _stale = merge.read_findings(tmp_path / "q")  # duplicates.csv, read back unescaped
    findings = merge.proposals._read_kit_csv(tmp_path / "q" / "findings.csv")
    assert {"=1+1", "+AL000001"} <= set(findings["primary_id"])


def test_the_registration_issue_file_holds_no_formula(tmp_path, sandbox):
    path = formula_registration(tmp_path / "patrons.csv")
    outcome = run_cli("register", "--csv", path, "--dry-run", "--quiet")
    check_contract(outcome, "register")
    assert outcome.code == 3
    assert assert_no_formula_cells(tmp_path / "patrons.issues.csv") >= len(FORMULAS) - 1


# -- masking ---------------------------------------------------------------------------------------

ODD = {"email": "yu.xi(at)mailhost.com", "id": "abc", "id2": "ABC", "name": "Zyxwq"}


def odd_result():
    """Records whose values the usual patterns miss: an email without @, three-letter ids in two cases."""
    users = [alma_user("abc", first="Zyxwq", last="Qwxyz", email=ODD["email"], group="UGRAD"),
             alma_user("ABC2", first="Mo", last="Ro", identifiers=(("BARCODE", "ABC"),), group="UGRAD"),
             alma_user("AL123456", first="Ok", last="Fine", group="UGRAD")]
    frame = users_frame(users)
    return analyse(frame, None, load_policy(None), today=dt.date(2026, 6, 1), duplicates=False)


def written_text(folder: Path) -> str:
    """All the text a report run wrote: HTML, CSV, JSON, and the workbook's cell strings."""
    parts = []
    for path in folder.rglob("*"):
        if path.suffix in (".html", ".csv", ".json", ".txt"):
            parts.append(path.read_text(encoding="utf-8"))
        elif path.suffix == ".xlsx":
            book = load_workbook(path)
            parts += [str(c.value) for s in book.worksheets for r in s.iter_rows() for c in r if c.value is not None]
    return "\n".join(parts)


@pytest.mark.parametrize("mask", [True, False], ids=["masked", "positive-control-unmasked"])
def test_a_masked_report_holds_no_raw_value_even_in_messages(tmp_path, mask):
    from almatools import reports

    result = odd_result()
    messages = " ".join(result.findings["message"])
    assert ODD["email"] in messages and "'ABC2'" in messages  # the rules do quote them
    run = reports.start_run(tmp_path / "reports")
    data = reports.build_report(result, None, mask=mask, root=tmp_path / "reports")
    reports.write_report(data, run.folder, result=result)
    text = written_text(run.folder)
    leaks = [v for v in (ODD["email"], "Zyxwq", "'ABC2'", "abc is also", "held by ABC") if v in text]
    if mask:
        assert leaks == []
        assert "Malformed email address: EMAIL-" in text
    else:  # the same check finds the values in an unmasked report: it can fail
        assert ODD["email"] in leaks and "'ABC2'" in leaks
    reports.abandon_run(run)
