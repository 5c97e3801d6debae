"""The panel of bulk registration from a CSV file (validated, journaled, resumable), with its issue list."""

from __future__ import annotations

import csv
import threading
from collections.abc import Collection
from datetime import date
from pathlib import Path

import ipywidgets as widgets

from almatools.client import AlmaClient
from almatools.errors import AlmaError, AlmaToolsError
from almatools.files import unsafe_cell
from almatools.policy import Policy
from almatools.registration import IDENTIFIER_PREFIX
from almatools.ui.errors import error_message
from almatools.ui.links import link_html
from almatools.ui.register import FIELD_LABELS, _DryRunSwitch
from almatools.ui.register_html import _GREY, _box, _esc

__all__ = ["BulkPanel", "build_bulk_panel"]

def _count_rows(path: Path) -> int:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return max(0, sum(1 for _ in csv.reader(handle)) - 1)
    except (OSError, UnicodeDecodeError):
        return 0


def _issues_html(path: Path, limit: int = 20) -> str:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [{k: unsafe_cell(v) for k, v in r.items()} for r in csv.DictReader(handle)]
    except OSError:
        return ""
    if not rows:
        return f"<p>No problems to report. Issue file: {link_html(path)}</p>"
    rows.sort(key=lambda r: int(r["row"]) if str(r.get("row") or "").isdigit() else 0)  # in the file's order

    def column(name: str) -> str:
        # The column of the CSV to correct, with the form's word for it: "Last name (last_name)".
        if not name:
            return ""
        shown = FIELD_LABELS.get(name) or (name[len(IDENTIFIER_PREFIX):] if name.startswith(IDENTIFIER_PREFIX) else "")
        return f"{shown} ({name})" if shown else name

    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{c}</th>"
                   for c in ("Row", "Primary id", "Column", "What to fix"))
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px;vertical-align:top'>{_esc(v)}</td>" for v in (
        r.get("row"), r.get("primary_id"), column(r.get("field") or ""), r.get("message"))) + "</tr>" for r in rows[:limit])
    more = f"<p>… and {len(rows) - limit} more (all of them are in the issue file).</p>" if len(rows) > limit else ""
    return (f"<p>{len(rows)} problems, one per line, in <span class='almatools-issue-file'>{link_html(path)}</span>. "
            "Rows are numbered as a spreadsheet shows them (the header is row 1). Correct the rows and run the "
            "same file again: rows already registered are skipped.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}")


class BulkPanel(widgets.VBox):
    """Bulk registration from a CSV file (see :func:`build_bulk_panel`).

    Attributes:
        upload: a ``FileUpload`` for the CSV; path: or the CSV's path on this machine; out_dir: where the
        journal and issue file go (empty: beside the CSV); dry_run: the dry-run checkbox; run_button;
        progress: rows done out of the file's rows; summary: the counts; issues: the issue file's path and
        first problems; result: the latest :class:`~almatools.bulk.BulkResult` (or None).
    """

    def __init__(self, client: AlmaClient, policy: Policy, *, work_dir: str | Path | None = None,
                 today: date | None = None, sis_ids: Collection[str] | None = None) -> None:
        self.policy, self.today, self.sis_ids = policy, today, sis_ids
        self.work_dir = Path(work_dir) if work_dir else Path.cwd() / "registration_runs"
        self.switch = _DryRunSwitch(client)
        self.dry_run, self.banner = self.switch.checkbox, self.switch.banner
        self.result = None
        self.upload = widgets.FileUpload(accept=".csv", multiple=False, description="Upload CSV")
        # Described, not only a placeholder: once typed into, a box must still say what it is for.
        wide = {"description_width": "190px"}
        self.path = widgets.Text(placeholder="or the path of a CSV file on this machine", description="CSV file",
                                 style=wide, layout=widgets.Layout(width="60%"))
        self.out_dir = widgets.Text(placeholder="default: beside the CSV", style=wide,
                                    description="Journal and issue file in", layout=widgets.Layout(width="60%"))
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="Rows", bar_style="info")
        self.summary, self.issues = widgets.HTML(), widgets.HTML()
        for name, w in (("bulk-upload", self.upload), ("bulk-path", self.path), ("bulk-out", self.out_dir),
                        ("bulk-run", self.run_button), ("bulk-progress", self.progress),
                        ("bulk-summary", self.summary), ("bulk-issues", self.issues)):
            w.add_class(f"almatools-{name}")
        self.run_button.on_click(self._run)
        super().__init__([
            self.dry_run,
            widgets.HTML(f"<span style='color:{_GREY}'>Every row is checked first; problems go to NAME.issues.csv. "
                         "Running the same file again resumes where a run stopped and creates nobody twice.</span>"),
            widgets.HBox([self.upload, self.path]), self.out_dir, self.run_button, self.progress, self.summary,
            self.issues])
        self.add_class("almatools-bulk-panel")

    def _csv_path(self) -> Path | None:
        if self.path.value.strip():
            return Path(self.path.value.strip()).expanduser()
        files = list(self.upload.value or ())
        if not files:
            return None
        upload = files[0]
        target = self.work_dir / Path(str(upload["name"])).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(upload["content"]))  # same name again = same journal: a re-run resumes
        return target

    def _run(self, _=None) -> None:
        from almatools.bulk import register_csv

        path = self._csv_path()
        if path is None:
            self.summary.value = _box("failed", "Upload a CSV file or type its path first.")
            return
        self.run_button.disabled = True
        self.progress.max, self.progress.value, self.progress.bar_style = max(1, _count_rows(path)), 0, "info"
        self.summary.value = f"Checking and registering the rows of {_esc(path)} …"
        self.issues.value = ""

        done = [0]
        lock = threading.Lock()

        def on_row(_number: int, _outcome: str) -> None:  # called from the run's worker threads
            with lock:
                done[0] += 1
                self.progress.value = min(self.progress.max, done[0])

        try:
            result = register_csv(self.switch.active, path, self.policy, out_dir=self.out_dir.value.strip() or None,
                                  today=self.today, on_row=on_row, sis_ids=self.sis_ids)
        except (AlmaToolsError, OSError) as exc:
            message = (error_message(exc, self.switch.active, then="then click Run again: rows already done are "
                                                                 "skipped") if isinstance(exc, AlmaError) else str(exc))
            self.summary.value = _box("failed", message)
            self.progress.bar_style = "danger"
            return
        finally:
            self.run_button.disabled = False
        self.result = result
        self.progress.value = self.progress.max
        self.progress.bar_style = "warning" if result.stopped else "success"
        verb = "planned (dry run)" if self.switch.active.dry_run else "created"
        counts = (f"{result.rows} rows: {result.created} {verb}, {result.already_done} done in an earlier run, "
                  f"{result.invalid} invalid, {result.refused} refused by Alma or as possible duplicates; "
                  f"{result.calls} API calls.")
        status = "stopped" if result.stopped else "done"
        self.summary.value = _box(status, counts + (f" {result.stopped}" if result.stopped else ""))
        self.issues.value = _issues_html(result.issues_path) if result.issues_path else ""


def build_bulk_panel(client: AlmaClient, policy: Policy, *, work_dir: str | Path | None = None,
                     today: date | None = None, sis_ids: Collection[str] | None = None) -> BulkPanel:
    """Bulk registration from a CSV: upload (or a path), Run, a progress bar, the summary and the issue file.

    The run is :func:`~almatools.bulk.register_csv`: validated first, journaled, resumable (upload or run
    the same file again after an interruption).

    Args:
        client: the Alma client (the panel's dry-run switch plans instead of writing).
        policy: the institution's policy.
        work_dir: where uploaded files are saved (default ``./registration_runs``).
        today: the date validation judges by.
        sis_ids: the primary identifiers of the current SIS extract: a row the SIS load will bring is sent only
            as SIS-managed under that identifier; as a locally managed record it is refused.
    """
    return BulkPanel(client, policy, work_dir=work_dir, today=today, sis_ids=sis_ids)
