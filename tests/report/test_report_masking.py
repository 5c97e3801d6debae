"""``--mask-pii``: no name, email or identifier of a patron in the HTML, the workbook or the CSV files, and
the same value always gets the same token."""

from __future__ import annotations

import json
import re

import pandas as pd
from _report_data import page, read_csv, runs, words
from openpyxl import load_workbook

from almatools.labels import label
from almatools.sources import load_sis, load_users

# columns whose text is the kit's own (rule titles, actions, codes), not the patrons'
FIXED = {label(c) for c in ("rule_id", "severity", "family", "user_group", "account_type", "field", "action", "title",
                             "what_to_do", "status", "source", "item")}  # the workbook's headings


def personal_values(institution, findings: pd.DataFrame) -> tuple[set[str], set[str]]:
    """(ids and emails, names) of every record a report on these findings can mention, from the sources."""
    users = load_users(institution / "users_export.zip")
    sis = load_sis(institution / "sis_extract.zip")
    involved = {v.casefold() for v in pd.concat([findings["primary_id"], findings["other_primary_id"]]) if v}
    ids, names = set(), set()
    for table in (users, sis):
        rows = table[table["primary_id"].str.casefold().isin(involved)]
        ids |= set(rows["primary_id"])
        for column in ("emails", "identifier_values"):
            ids |= {v for cell in rows[column] for v in cell.split(";") if v}
        ids |= {pair.split("=", 1)[1] for cell in rows["identifiers"] for pair in cell.split(";") if "=" in pair}
        for column in ("first_name", "last_name"):
            names |= {w for cell in rows[column] for w in cell.split() if len(w) >= 3}
    assert len(ids) > 50 and len(names) > 20
    return {v for v in ids if len(v) >= 4}, names


def html_texts(path) -> tuple[str, str]:
    """(the whole page's text, the text of its data cells only: the tables of records)"""
    doc = page(path)
    cells = doc.xpath('//section[@id="top-findings" or @id="duplicates" or @id="merge-proposals" or @id="resolved"]'
                      '//td')
    return doc.text_content() + " " + path.read_text(encoding="utf-8"), " ".join(c.text_content() for c in cells)


def xlsx_texts(path) -> tuple[str, str]:
    """(every cell's text, the text of the cells that hold patron data)"""
    book = load_workbook(path, read_only=True)
    everything, data = [], []
    for sheet in book.worksheets:
        rows = list(sheet.iter_rows(values_only=True))
        header = [str(h) for h in rows[0]] if rows else []
        for row in rows[1:]:
            for name, value in zip(header, row):
                if value is None:
                    continue
                everything.append(str(value))
                if name not in FIXED and sheet.title not in ("Summary", "By rule"):
                    data.append(str(value))
    book.close()
    return " ".join(everything), " ".join(data)


def leaks(values: set[str], text: str, *, fold: bool) -> set[str]:
    found = words(text.casefold() if fold else text)
    return {v for v in values if (v.casefold() if fold else v) in found}


def test_masked_outputs_hold_no_name_email_or_identifier(institution, masked_root, history_root):
    (run,) = runs(masked_root)
    unmasked_run = runs(history_root)[0]  # the same records as of the same day, unmasked
    raw_findings = read_csv(unmasked_run / "findings.csv")
    ids, names = personal_values(institution, raw_findings)

    # the check can fail: the unmasked report of the same records names them
    html_all, html_data = html_texts(unmasked_run / "report.html")
    xlsx_all, xlsx_data = xlsx_texts(unmasked_run / "report.xlsx")
    assert len(leaks(ids, html_all, fold=True)) > 20 and len(leaks(names, html_data, fold=False)) > 10
    assert len(leaks(ids, xlsx_all, fold=True)) > 50 and len(leaks(names, xlsx_data, fold=False)) > 10

    html_all, html_data = html_texts(run / "report.html")
    xlsx_all, xlsx_data = xlsx_texts(run / "report.xlsx")
    assert leaks(ids, html_all, fold=True) == set()
    assert leaks(names, html_data, fold=False) == set()
    assert leaks(ids, xlsx_all, fold=True) == set()
    assert leaks(names, xlsx_data, fold=False) == set()
    for name in ("findings.csv", "duplicates.csv", "merge_proposals.csv", "summary.json", "summary.txt",
                 "run.json", "finding_keys.json"):
        text = (run / name).read_text(encoding="utf-8")
        assert leaks(ids, text, fold=True) == set(), name
        assert leaks(names, text, fold=False) == set(), name
    assert not (run / "unmasked").exists() and not (run / "load_errors.csv").exists()
    assert "@" not in html_data + xlsx_data  # not even an email address the sources did not have
    secret = (masked_root / ".report-secret").read_text(encoding="ascii").strip()
    assert all(secret not in p.read_text(encoding="utf-8", errors="replace") for p in run.iterdir() if p.is_file())


def test_the_same_value_gets_the_same_token_everywhere(masked_root, history_root):
    (run,) = runs(masked_root)
    masked = read_csv(run / "findings.csv")
    raw = read_csv(runs(history_root)[0] / "findings.csv")
    assert len(masked) == len(raw) and list(masked["rule_id"]) == list(raw["rule_id"])
    token_of: dict[str, str] = {}
    for value, token in zip(list(raw["primary_id"]) + list(raw["other_primary_id"]),
                            list(masked["primary_id"]) + list(masked["other_primary_id"])):
        if value:
            assert re.fullmatch(r"ID-[0-9a-f]{12}", token)
            assert token_of.setdefault(value.casefold(), token) == token  # one token per record
    assert len(set(token_of.values())) == len(token_of)  # and one record per token
    # the duplicate clusters, the merge proposals, the messages and the workbook use the same tokens
    duplicates = read_csv(run / "duplicates.csv")
    raw_duplicates = read_csv(runs(history_root)[0] / "duplicates.csv")
    for value, token in zip(raw_duplicates["primary_id"], duplicates["primary_id"]):
        assert token_of.get(value.casefold(), token) == token
    proposals = read_csv(run / "merge_proposals.csv")
    assert set(proposals["from_primary_id"]) | set(proposals["to_primary_id"]) <= set(duplicates["primary_id"])
    dup = masked[masked["rule_id"] == "DUPLICATE"].iloc[0]
    assert dup["other_primary_id"] in dup["message"]
    html = (run / "report.html").read_text(encoding="utf-8")
    assert all(token in html for token in list(token_of.values())[:40])
    book = load_workbook(run / "report.xlsx", read_only=True)
    sheet_ids = {r[0] for r in list(book["DUPLICATE"].iter_rows(values_only=True))[1:]}
    book.close()
    assert sheet_ids == set(masked.loc[masked["rule_id"] == "DUPLICATE", "primary_id"])
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["masked"] is True and summary["findings"] == len(masked)
