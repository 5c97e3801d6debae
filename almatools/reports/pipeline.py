"""The whole report as one call, :func:`run_report`: what ``almatools report`` and notebook 04 run."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from almatools.reports.data import ReportData, build_report, merge_proposals
from almatools.reports.outputs import write_report
from almatools.reports.runs import _TMP_PREFIX, RUN_FILE, ReportRun, abandon_run, finish_run, start_run, step


@dataclass
class ReportOutcome:
    """What :func:`run_report` made.

    Attributes:
        folder: The run's folder (``root/2026-11-24T1030``; the temporary folder when not finished).
        files: The files written, by name.
        data: The report's data (counts, tables, summary text).
        sources: Where the users and the SIS extract came from, and how many records were read.
    """

    folder: Path
    files: dict[str, Path]
    data: ReportData
    sources: Any

    @property
    def entry(self) -> dict[str, Any]:
        """The run's record (``run.json``): its counts, as written to the history."""
        return json.loads((self.folder / RUN_FILE).read_text(encoding="utf-8"))


def run_report(output_root: str | os.PathLike[str] | None = None, *, users_source: str = "", sis_source: str = "",
               policy_path: str | os.PathLike[str] | None = None, title: str = "Patron data quality",
               period: str = "", today: date | str | None = None, mask_pii: bool = False,
               unmasked_csv: bool = False, find_duplicates: bool = True, top_n: int = 50,
               client: Any = None, progress: bool = False, run: ReportRun | None = None,
               finish: bool = True, cache: bool = True) -> ReportOutcome:
    """The whole data-quality report, as ``almatools report`` and notebook 04 run it.

    Reads the policy and the sources (:func:`almatools.sources.load_sources`), checks the records
    (:func:`almatools.quality.analyse`), prepares the merge proposals (:func:`merge_proposals`), builds
    and writes the report (:func:`build_report`, :func:`write_report`) into a temporary folder of the
    output root, and moves it into place (:func:`finish_run`). When any step fails the run is
    abandoned: nothing is left in the output root, and the :class:`ReportError` names the step and source.

    Args:
        output_root: The report folder (default: ``reports`` in the kit's data folder).
        users_source: Any user source, ``"api:"``, or empty for the sandbox's own users.
        sis_source: The SIS extract; empty: the sandbox's own with no users source, else none.
        policy_path: The policy file (default: ``ALMATOOLS_POLICY`` or the kit's default).
        title: The report's heading.
        period: Shown under the heading, e.g. ``"November 2026"``.
        today: The day the analysis is as of (a date or ``YYYY-MM-DD``; default today).
        mask_pii: Replace names, emails and identifiers by tokens.
        unmasked_csv: With ``mask_pii``: also write the unmasked CSV files (into ``unmasked/``).
        find_duplicates: Also run the duplicate linkage.
        top_n: Findings, clusters and merge pairs listed in the HTML.
        client: The Alma client; None connects (:func:`almatools.connect`) only when the users come
            from Alma or the sandbox, and closes it at the end.
        progress: Show progress bars.
        run: A run already started (:func:`start_run`); default: one is started here.
        finish: Move the run into place at the end (False leaves it to the caller).
        cache: Use the cache for the parsed files and the linkage (:mod:`almatools.cache`).

    Raises:
        ReportError: A step failed (the message names it); the run was abandoned.
    """
    from almatools.policy import load_policy
    from almatools.quality import analyse
    from almatools.sources import load_sources

    run = run or start_run(output_root)
    own_client = None
    try:
        with step("reading the parameter today", today):
            as_of = date.fromisoformat(today) if isinstance(today, str) and today else (today or None)
        with step("reading the policy", policy_path or "the default policy"):
            policy = load_policy(policy_path or None)
        if client is None and (not users_source or str(users_source).strip().lower() == "api:"):
            import almatools

            with step("connecting to Alma"):
                client = own_client = almatools.connect()
        sources = load_sources(users_source, sis_source, policy=policy, client=client, progress=progress,
                               step=step, cache=cache)
        with step("checking the records"):
            result = analyse(sources.users, sources.sis, policy, today=as_of, duplicates=find_duplicates,
                             progress=progress, cache=cache)
        with step("preparing the merge proposals"):
            worklist = merge_proposals(result, sources.sis)
        with step("building the report", run.root):
            data = build_report(result, worklist, root=run.root, sis=sources.sis, mask=mask_pii, title=title,
                                period=period, top_n=top_n)
        with step("writing the report files", run.folder):
            files = write_report(data, run.folder, result=result, worklist=worklist, unmasked_csv=unmasked_csv)
        written = {name: Path(path).relative_to(run.folder) for name, path in files.items()}
        folder = finish_run(run) if finish else run.folder
    except BaseException:
        if run.folder.name.startswith(_TMP_PREFIX) or run.external:  # never a run already moved into place
            abandon_run(run)
        raise
    finally:
        if own_client is not None:
            own_client.close()
    return ReportOutcome(folder, {name: folder / path for name, path in written.items()}, data, sources)
