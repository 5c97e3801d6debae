"""Data-quality reports: one HTML page and one workbook per run, for people who do not program.

A run (:func:`run_report`: ``almatools report --out DIR``, or ``notebooks/04_data_quality_report.ipynb``
by hand) checks the patron records (:func:`almatools.quality.analyse`), prepares the merge proposals of
the duplicate clusters (:func:`merge_proposals`), and this package turns the result into:

* ``report.html``: self-contained (no script, no external link; the charts are inline SVG): a summary,
  counts by rule, severity and user group, charts, the top findings, the duplicate clusters, the merge
  proposals, the trend against earlier runs and what was resolved since the last run;
* ``report.xlsx``: a summary sheet, one sheet per rule (header frozen, filters on, columns sized), the
  duplicate clusters, the merge proposals and the resolved findings;
* the CSV files of ``almatools quality`` (``findings.csv``, ``duplicates.csv``, ``summary.json`` …) and
  ``merge_proposals.csv``.

The output root
---------------
Everything a run writes goes into a folder of its own under the output root, named by the time it
started (``2026-11-24T1030``; ``-2``, ``-3`` … when two runs start in one minute)::

    DIR/
      2026-11-24T1030/          one complete run (report.html, report.xlsx, CSVs, run.json; with
                                --notebook also the executed notebook, report.ipynb)
      2026-12-01T1030/
      latest.txt                the name of the newest complete run (and ``latest``, a symlink, where allowed)
      history.jsonl             one line per run: its counts (no personal data), for the trend
      last_findings.json        the keys of the newest run's findings (keyed hashes), for new/resolved
      .report-secret            the key of the hashes and masking tokens (never copied into a report)

A run is written into a hidden temporary folder (``DIR/.tmp-…``) and renamed into place only when it
is complete (:func:`start_run`, :func:`finish_run`); a run that fails leaves nothing behind
(:func:`abandon_run`), and the history is appended only after the rename. A run holds an exclusive lock
on ``.owner.lock`` in its folder for as long as its process lives; :func:`start_run` removes every
``.tmp-…`` folder whose lock is free (its run was killed, even with kill -9), so nothing unmasked stays
behind and a live run's folder is never touched (without ``fcntl``, as on Windows: after a day).

Masking builds each message from masked values: a finding's message has the values of its own records
replaced first (:meth:`Masker.about`), whatever their shape, then known and recognisable values.

New and resolved
----------------
A finding is identified across runs by its key (rule, record, other record, field), stored as a keyed
hash (HMAC-SHA256 with the root's secret), so the history never holds personal data. "New since the
last run": its key was not among the last run's; "resolved since the last run": a key of the last run
that this run no longer has.

Masking
-------
With ``mask=True`` every name, email address, phone number and identifier in the HTML, the workbook
and the CSVs is replaced by a token from the same keyed hash: ``ID-…``, ``NAME-…``, ``EMAIL-…``,
``PHONE-…``. The same value always gets the same token, in every section and in every run of the
same output root, so a record can be followed without being named. Free text (messages, evidence,
reasons) is masked word by word: the values of the records in the report are looked up, and any
other word that looks like an email address or a long identifier is masked as well.

Modules
-------
``runs`` (the output root, run folders, history, secret), ``masking`` (tokens and finding keys),
``data`` (the report's numbers and tables), ``charts`` (inline SVG), ``page`` (the HTML),
``workbook`` (the Excel file), ``outputs`` (every file of a run), ``pipeline`` (:func:`run_report`).
Everything public is imported here: ``from almatools import reports`` is all a caller needs.
"""

from __future__ import annotations

from almatools.errors import ReportError
from almatools.reports.charts import bar_chart, line_chart
from almatools.reports.data import SECTIONS, ReportData, build_report, merge_proposals
from almatools.reports.masking import Masker, finding_key
from almatools.reports.outputs import write_report
from almatools.reports.page import render_html
from almatools.reports.pipeline import ReportOutcome, run_report
from almatools.reports.runs import (
    HISTORY_FILE,
    KEYS_FILE,
    LAST_FINDINGS_FILE,
    LATEST_FILE,
    RUN_FILE,
    SECRET_FILE,
    ReportRun,
    abandon_run,
    finish_run,
    load_secret,
    read_history,
    read_last_findings,
    start_run,
    step,
)
from almatools.reports.workbook import write_xlsx

__all__ = [
    "ReportError",
    "ReportRun",
    "ReportData",
    "Masker",
    "step",
    "start_run",
    "finish_run",
    "abandon_run",
    "load_secret",
    "read_history",
    "read_last_findings",
    "finding_key",
    "merge_proposals",
    "build_report",
    "render_html",
    "write_xlsx",
    "write_report",
    "SECTIONS",
    "HISTORY_FILE",
    "LAST_FINDINGS_FILE",
    "SECRET_FILE",
    "LATEST_FILE",
    "RUN_FILE",
    "KEYS_FILE",
    "ReportOutcome",
    "run_report",
    "bar_chart",
    "line_chart",
]
