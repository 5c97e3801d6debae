"""The exports of a worklist: the approved list, the sign-off workbook, the printable worklist."""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from almatools.errors import MergeError
from almatools.files import atomic_write as _atomic_write
from almatools.files import safe_cell, text_cells
from almatools.merge.records import MERGE_LIST_COLUMNS, _name, _now
from almatools.merge.worklist import Pair, Worklist

log = logging.getLogger(__name__)

def _split(value: str) -> set[str]:
    return {v for v in str(value or "").split(";") if v}


def segments_to_copy(frm: Mapping[str, Any], to: Mapping[str, Any]) -> list[tuple[str, bool, str]]:
    """Which of FROM's segments to copy in the Merge Users screen: (segment, copy, why)."""
    new_contacts = (_split(frm.get("emails")) - _split(to.get("emails"))) | (
        {frm.get("phone")} - {to.get("phone"), "", None})
    if frm.get("line1") and frm.get("line1") != to.get("line1"):
        new_contacts.add(frm["line1"])
    new_ids = _split(frm.get("identifiers")) - _split(to.get("identifiers"))
    new_stats = _split(frm.get("statistics")) - _split(to.get("statistics"))
    return [
        ("Contact information", bool(new_contacts),
         f"FROM has {', '.join(sorted(new_contacts))}, which TO lacks." if new_contacts else "TO has FROM's contacts."),
        ("Identifiers", bool(new_ids),
         f"keeps FROM's {', '.join(sorted(new_ids))} working for the patron." if new_ids
         else "FROM has no identifiers that TO lacks."),
        ("Notes", True, "notes carry the record's history; copying an empty list does no harm."),
        ("Statistics", bool(new_stats),
         f"FROM has {', '.join(sorted(new_stats))}." if new_stats else "TO has FROM's statistical categories."),
        ("Blocks", False, "unless FROM has a manual block that still applies (fines and fees move with the merge "
                          "anyway)."),
        ("Attachments, proxy-for, demerits", False, "unless FROM has any that still matter."),
    ]


def alma_steps(pair: Pair, frm: Mapping[str, Any], to: Mapping[str, Any]) -> list[str]:
    """The steps of one merge in Alma's Merge Users screen, written from the pair's data."""
    def who(rec: Mapping[str, Any]) -> str:
        kind = "SIS-managed" if rec.get("account_type") == "EXTERNAL" else "locally managed"
        return f"{_name(rec)}, {rec.get('user_group') or 'no group'}, {kind}"

    steps = [
        "Open Admin > User Management > Merge Users.",
        f"From user (merged away and deleted): search {pair.from_id} and check that it is {who(frm)}.",
        f"To user (kept): search {pair.to_id} and check that it is {who(to)}.",
        "Segments to copy: " + "; ".join(f"{name}: {'copy' if copy else 'leave'} ({why})"
                                         for name, copy, why in segments_to_copy(frm, to)),
    ]
    if to.get("account_type") == "EXTERNAL":
        steps.append("Tick \"Copy all segments as internal\": TO is SIS-managed, and the next SIS load replaces "
                     "its external segments, so only internal copies survive it.")
    else:
        steps.append("\"Copy all segments as internal\" is not needed: TO is locally managed, so all its segments "
                     "are internal already.")
    moving = [f"{frm[n]:g} {n}" for n in ("loans", "requests") if frm.get(n)]
    if frm.get("fees"):
        moving.append(f"fees of {frm['fees']:.2f}")
    if moving:
        steps.append(f"FROM's {', '.join(moving)} move to TO: check them on TO afterwards.")
    if frm.get("linked") or to.get("linked"):
        steps.append("A linked or network account is involved: Alma does not move loans and requests of fulfillment "
                     "network accounts. Check them after the merge.")
    steps.append("Merge, and confirm. It cannot be undone. Then tick Done on this sheet; the verify step "
                 "confirms it in Alma.")
    return steps


def _checks_text(pair: Pair) -> str:
    failed = [f"{'FAILED' if c.hard else 'warning'} {c.name}: {c.message}" for c in pair.checks if not c.ok]
    return "; ".join(failed) or "all checks passed"


def _mergeable(worklist: Worklist) -> list[Pair]:
    pairs = worklist.pairs()
    blocked = [p.pair_id for p in pairs if p.status == "blocked"]
    if blocked:
        log.warning("approved pairs left out because a hard check fails since: %s", ", ".join(blocked))
    return [p for p in pairs if p.decision == "approved" and p.approvable]


def _out(folder: Path | str | None, worklist: Worklist) -> Path:
    target = Path(folder) if folder is not None else worklist.folder
    if target is None:
        raise MergeError("Say where to write: the worklist has no folder yet.")
    target.mkdir(parents=True, exist_ok=True)
    return target


def export_merge_list(worklist: Worklist, folder: Path | str | None = None) -> Path:
    """``merge_list.csv``: only the approved pairs that pass every hard check, in worklist order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MERGE_LIST_COLUMNS)
    for p in _mergeable(worklist):
        frm, to = worklist.record(p.from_id), worklist.record(p.to_id)
        writer.writerow([safe_cell(v) for v in (p.pair_id, p.cluster_id, p.from_id, _name(frm), p.to_id, _name(to),
                                                p.reason, _checks_text(p), " | ".join(p.notes), p.reviewer,
                                                p.decided_at)])
    path = _out(folder, worklist) / "merge_list.csv"
    _atomic_write(path, buffer.getvalue().encode("utf-8"))
    return path


def export_review_workbook(worklist: Worklist, folder: Path | str | None = None) -> Path:
    """``merge_review.xlsx`` for sign-off: every pair with its status (header frozen, filters, sized
    columns), the held clusters, and a sign-off sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = "Pairs"
    frame = worklist.to_frame()
    fills = {"approved": "E2F0D9", "done": "C6E0B4", "rejected": "EDEDED", "blocked": "F8CBAD", "not done": "F8CBAD"}

    def table(ws, columns: list[str], rows: list[list[Any]]) -> None:
        ws.append(columns)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append(["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in row])
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = ws.dimensions
        for index, column in enumerate(columns, 1):
            longest = max([len(str(column))] + [len(str(r[index - 1] or "")) for r in rows])
            ws.column_dimensions[get_column_letter(index)].width = min(60, max(8, longest + 2))
            if longest > 60:
                for (cell,) in ws.iter_rows(min_row=2, min_col=index, max_col=index):
                    cell.alignment = Alignment(wrap_text=True, vertical="top")

    table(sheet, list(frame.columns), frame.astype("object").values.tolist())
    status_col = list(frame.columns).index("status") + 1
    for (cell,) in sheet.iter_rows(min_row=2, min_col=status_col, max_col=status_col):
        if cell.value in fills:
            cell.fill = PatternFill("solid", fgColor=fills[cell.value])
    held = book.create_sheet("Held")
    table(held, ["cluster_id", "primary_ids", "reason"],
          [[h.get("cluster_id", ""), "; ".join(h.get("primary_ids", [])), h.get("reason", "")] for h in worklist.held])
    sign = book.create_sheet("Sign-off")
    counts = frame["status"].value_counts().to_dict()
    for row in (["Merge worklist", str(worklist.folder or "")], ["Prepared", worklist.created_at],
                ["Pairs", len(frame)], *[[f"  {k}", v] for k, v in sorted(counts.items())],
                ["Held for manual review", len(worklist.held)],
                ["Reviewed by", ", ".join(sorted(set(frame["reviewer"]) - {""}))],
                ["Signed off by (name)", ""], ["Date", ""], ["Signature", ""]):
        sign.append(row)
    sign.column_dimensions["A"].width, sign.column_dimensions["B"].width = 26, 50
    for (cell,) in sign.iter_rows(min_col=1, max_col=1):
        cell.font = Font(bold=True)
    buffer = io.BytesIO()
    for sheet in book.worksheets:
        text_cells(sheet)  # names, notes and the reviewer are data: never formulas
    book.save(buffer)
    path = _out(folder, worklist) / "merge_review.xlsx"
    _atomic_write(path, buffer.getvalue())
    return path


def export_worklist_html(worklist: Worklist, folder: Path | str | None = None) -> Path:
    """``merge_worklist.html``: a printable sheet with the Alma steps for every approved pair."""
    from jinja2 import Environment, PackageLoader

    env = Environment(loader=PackageLoader("almatools", "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True)
    items = []
    for p in _mergeable(worklist):
        frm, to = worklist.record(p.from_id), worklist.record(p.to_id)
        steps = alma_steps(p, frm, to)  # open, FROM, TO, segments, "as internal", then the rest
        items.append({"pair": p, "from_name": _name(frm), "to_name": _name(to), "before": steps[:3],
                      "segments": segments_to_copy(frm, to), "internal": steps[4], "after": steps[5:],
                      "warnings": p.warnings})
    html = env.get_template("merge_worklist.html").render(
        items=items, created=_now(), folder=str(worklist.folder or ""), total=len(worklist))
    path = _out(folder, worklist) / "merge_worklist.html"
    _atomic_write(path, html.encode("utf-8"))
    return path


def export_all(worklist: Worklist, folder: Path | str | None = None) -> dict[str, Path]:
    """All three exports; returns their paths by name."""
    return {"merge_list": export_merge_list(worklist, folder), "review": export_review_workbook(worklist, folder),
            "worklist": export_worklist_html(worklist, folder)}
