"""All the files of a report run: the HTML, the workbook, the CSV files and the run's record."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from almatools.files import atomic_write as _atomic_write
from almatools.files import write_csv
from almatools.quality.rules import FINDING_COLUMNS

if TYPE_CHECKING:
    from almatools.merge import Worklist
    from almatools.quality.run import QualityResult
from almatools.errors import ReportError
from almatools.reports.data import ReportData
from almatools.reports.page import render_html
from almatools.reports.runs import KEYS_FILE, RUN_FILE, _json_bytes
from almatools.reports.workbook import write_xlsx


def write_report(data: ReportData, folder: str | os.PathLike[str], *, result: QualityResult | None = None,
                 worklist: Worklist | None = None, unmasked_csv: bool = False) -> dict[str, Path]:
    """Write a run's files into ``folder``; ``run.json`` (the history record) comes last and marks the run
    complete.

    Files: ``report.html``, ``report.xlsx``, ``findings.csv``, ``duplicates.csv``, ``merge_proposals.csv``,
    ``summary.json``, ``summary.txt`` (and ``load_errors.csv``, unmasked only), ``finding_keys.json``,
    ``run.json``. When masked, the CSVs are masked too, and the unmasked ones are written (into
    ``unmasked/``) only with ``unmasked_csv``.

    Args:
        data: the report (:func:`build_report`).
        folder: the run's folder (:attr:`ReportRun.folder`).
        result: the run's analysis: needed for the unmasked CSVs.
        worklist: the merge proposals, for the unmasked ``merge_proposals.csv`` of a masked report.
        unmasked_csv: with a masked report, also write the unmasked CSVs into ``unmasked/``.
    """
    from almatools.quality.run import DUPLICATE_COLUMNS, write_outputs

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    page = render_html(data)
    _atomic_write(out / "report.html", page.encode("utf-8"))
    written["report.html"] = out / "report.html"
    written["report.xlsx"] = write_xlsx(data, out / "report.xlsx")
    if not data.masked or unmasked_csv:
        if result is None:
            raise ReportError("the unmasked CSV files need the analysis result", step="writing the CSV files")
        raw = out if not data.masked else out / "unmasked"
        files = write_outputs(result, raw)
        raw_proposals = data.proposals if not data.masked else worklist.to_frame() if worklist is not None else None
        if raw_proposals is not None:
            write_csv(raw_proposals, raw / "merge_proposals.csv")
            files["merge_proposals.csv"] = raw / "merge_proposals.csv"
        written.update({(k if raw == out else f"unmasked/{k}"): v for k, v in files.items()})
    if data.masked:
        findings = data.findings[list(FINDING_COLUMNS)]
        write_csv(findings, out / "findings.csv")
        write_csv(data.clusters[[c for c in DUPLICATE_COLUMNS if c in data.clusters.columns]], out / "duplicates.csv")
        write_csv(data.proposals, out / "merge_proposals.csv")
        summary = dict(result.summary) if result is not None else {}
        summary["sources"] = data.summary["sources"]  # file names and counts, never the skipped records' values
        summary["masked"] = True
        _atomic_write(out / "summary.json", _json_bytes(summary, indent=2))
        _atomic_write(out / "summary.txt", (data.summary_text() + "\n").encode("utf-8"))
        for name in ("findings.csv", "duplicates.csv", "merge_proposals.csv", "summary.json", "summary.txt"):
            written[name] = out / name
    _atomic_write(out / KEYS_FILE, _json_bytes(data.keys, indent=None))
    written[KEYS_FILE] = out / KEYS_FILE
    _atomic_write(out / RUN_FILE, _json_bytes(data.entry))
    written[RUN_FILE] = out / RUN_FILE
    return written
