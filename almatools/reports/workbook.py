"""The report's workbook (``report.xlsx``): a summary, one sheet per rule, clusters, proposals, resolved."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from almatools.catalog import RULES
from almatools.files import text_cells
from almatools.labels import label
from almatools.reports.data import _XLSX_MAX_ROWS, ReportData

_RULE_SHEET_COLUMNS = ["primary_id", "other_primary_id", "user_group", "account_type", "field", "severity",
                       "message", "action", "new_since_last_run"]


def _clean_cell(value: Any) -> Any:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def _yes_no(flags: pd.Series) -> list[str]:
    return ["" if f is pd.NA or f is None else ("yes" if f else "no") for f in flags.tolist()]


def write_xlsx(data: ReportData, path: str | os.PathLike[str]) -> Path:
    """``report.xlsx``: a summary sheet, one sheet per rule (header frozen, filters on, columns sized),
    the duplicate clusters, the merge proposals and the resolved findings."""
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    target = Path(path)
    sheets: list[tuple[str, pd.DataFrame]] = []
    rows = [("Report", data.title), ("Period", data.period), ("As of", data.summary["today"]),
            ("Generated", data.generated_at), ("Policy", data.summary["policy"]),
            ("Users", data.summary["users"]), ("Findings", data.summary["findings"]),
            ("Records with findings", data.summary["records_with_findings"]),
            *[(f"  {s['severity']}", s["count"]) for s in data.by_severity],
            ("New since the last run", data.summary["new"] if data.previous_run else "first run"),
            ("Resolved since the last run", data.summary["resolved"] if data.previous_run else "first run"),
            ("Duplicate clusters", data.summary["duplicate_clusters"]),
            ("Merge proposals", data.summary["merge_proposals"]),
            ("Personal data masked", "yes" if data.masked else "no")]
    summary = pd.DataFrame(rows, columns=["item", "value"])
    by_rule = pd.DataFrame([{"rule_id": r["rule_id"], "severity": r["severity"], "findings": r["count"],
                             "last_run": r["previous"], "new": r["new"], "resolved": r["resolved"],
                             "title": r["title"], "what_to_do": r["action"]} for r in data.by_rule])
    sheets.append(("Summary", summary))
    sheets.append(("By rule", by_rule))
    findings = data.findings.assign(new_since_last_run=_yes_no(data.findings["new"]))
    for rule_id in RULES:
        part = findings.loc[findings["rule_id"] == rule_id, _RULE_SHEET_COLUMNS]
        sheets.append((rule_id[:31], part.head(_XLSX_MAX_ROWS)))
    sheets.append(("Duplicate clusters", data.clusters))
    sheets.append(("Merge proposals", data.proposals))
    sheets.append(("Resolved", data.resolved))
    target.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(target, engine="openpyxl") as writer:
        for name, frame in sheets:
            clean = frame.astype("object").where(frame.notna(), None).map(_clean_cell) if len(frame) else frame
            clean.rename(columns=label).to_excel(writer, sheet_name=name, index=False)  # headings for people
        for name, frame in sheets:
            ws = writer.sheets[name]
            text_cells(ws)  # a value that starts with "=" is data, never a formula
            for cell in ws[1]:
                cell.font = Font(bold=True)
            ws.freeze_panes = "A2"
            ws.auto_filter.ref = ws.dimensions
            sample = frame.head(2000).astype("string").fillna("")
            for index, column in enumerate(frame.columns, 1):
                longest = max([len(label(str(column)))] + [len(v) for v in sample[column].tolist()])
                ws.column_dimensions[get_column_letter(index)].width = min(80, max(8, longest + 2))
    return target
