"""The ``almatools report`` command: the data-quality report, run headless.

Wire it into the CLI's parser with one call: ``add_report_commands(commands)``, where ``commands`` is
the object ``parser.add_subparsers()`` returned.

The command calls :func:`almatools.reports.run_report` (the pipeline notebook 04 calls too, shipped in
the package: it works from an installed wheel, with no checkout). The run is written into a temporary
folder under ``--out``, moved into place and recorded in the history only when it is complete. With
``--notebook FILE`` it runs that notebook with papermill instead (a library's own variant of notebook
04; the executed notebook is then one of the outputs, ``report.ipynb``). When any step fails, the
temporary folder is removed, nothing else in ``--out`` changes, and the command exits 1 with a message
that names the step and the source.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from almatools.cli.common import _at_least_zero, _say
from almatools.errors import AlmaToolsError

__all__ = ["add_report_commands", "cmd_report", "report_notebook"]


NOTEBOOK_NAME = "04_data_quality_report.ipynb"


def _fail(message: str) -> int:
    sys.stderr.write(f"almatools report: {' '.join(message.split())}\n")  # one line, for cron mail and logs
    sys.stderr.flush()
    return 1


def report_notebook(explicit: Path) -> Path:
    """The report notebook given with ``--notebook``, checked to exist."""
    if Path(explicit).is_file():
        return Path(explicit)
    raise AlmaToolsError(f"Cannot find the report notebook {explicit}: give the path of a copy of "
                         f"notebooks/{NOTEBOOK_NAME}, or leave --notebook out to run the built-in report.")


def _source(value: str | None) -> str:
    """A source as the notebook's kernel needs it: files made absolute (the kernel may run elsewhere)."""
    if not value:
        return ""
    text = value.strip()
    if text.lower() in ("api:", "none") or text.lower().startswith("analytics:"):
        return "" if text.lower() == "none" else text
    return str(Path(text).expanduser().resolve())


def _parameters(args: argparse.Namespace, run_dir: Path, root: Path) -> dict[str, Any]:
    return {
        "users_source": _source(args.users), "sis_source": _source(args.sis),
        "policy_path": str(Path(args.policy).expanduser().resolve()) if args.policy else "",
        "output_root": str(root), "title": args.title, "period": args.period or "", "today": args.today or "",
        "mask_pii": bool(args.mask_pii), "unmasked_csv": bool(args.unmasked_csv),
        "find_duplicates": not args.no_duplicates, "top_n": args.top, "run_dir": str(run_dir),
    }


def _notebook_error(err: Exception) -> str:
    """What failed, from papermill's error: our ReportError's message, else the exception's name and text."""
    name, value = getattr(err, "ename", ""), getattr(err, "evalue", "")
    cell = getattr(err, "exec_count", None)
    where = f" (notebook cell [{cell}])" if cell else ""
    if name == "ReportError":
        return f"{value}{where}"
    return f"{name}: {value}{where}" if name else str(err)


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class _TimedOut(Exception):
    pass


def _time_is_up(signum: int, frame: Any) -> None:
    raise _TimedOut


def cmd_report(args: argparse.Namespace) -> int:
    """Check the arguments, then run the report (built in, or ``--notebook`` with papermill)."""
    if args.today:
        try:
            dt.date.fromisoformat(args.today)
        except ValueError:
            return _fail(f"--today must be a date like 2026-11-24, not {args.today!r}.")
    if args.sis and not args.users:
        return _fail("--sis needs --users (with neither, the report is on the sandbox's own data).")
    if args.unmasked_csv and not args.mask_pii:
        return _fail("--unmasked-csv goes with --mask-pii (without masking the CSV files are unmasked anyway).")
    if args.top < 1:
        return _fail(f"--top must be 1 or more, not {args.top}.")
    if args.notebook is not None:
        return _report_by_notebook(args)
    return _report_built_in(args)


def _report_built_in(args: argparse.Namespace) -> int:
    """Run :func:`almatools.reports.run_report` in this process."""
    from almatools import reports as report

    root = Path(args.out).expanduser().resolve()
    main_thread = threading.current_thread() is threading.main_thread()
    # SIGTERM (a scheduler's timeout, `kill`) ends the run like Ctrl-C: the temporary folder is removed.
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    alarm = signal.signal(signal.SIGALRM, _time_is_up) if main_thread and args.timeout else None
    run = None
    try:
        try:
            run = report.start_run(root)
        except (AlmaToolsError, OSError) as exc:
            return _fail(f"cannot write into {root}: {exc}")
        try:
            if alarm is not None:
                signal.alarm(args.timeout)
            outcome = report.run_report(
                users_source=args.users or "", sis_source=args.sis or "", policy_path=args.policy,
                title=args.title, period=args.period or "", today=args.today or None, mask_pii=bool(args.mask_pii),
                unmasked_csv=bool(args.unmasked_csv), find_duplicates=not args.no_duplicates, top_n=args.top,
                progress=not args.quiet, run=run, cache=not args.no_cache)
        except BaseException:
            if run.folder.name.startswith(".tmp-"):  # a signal may come before run_report's own clean-up
                report.abandon_run(run)
            raise
    except KeyboardInterrupt:
        return _stopped(root)
    except _TimedOut:
        return _fail(f"the report took longer than --timeout {args.timeout} seconds; nothing was written to {root} "
                     "(the run's temporary folder was removed).")
    except AlmaToolsError as exc:
        return _fail(f"{exc}\nNothing was written to {root} (the run's temporary folder was removed; the last "
                     "complete report is unchanged).")
    finally:
        if alarm is not None:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, alarm)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    _summary(outcome.folder, root)
    return 0


def _stopped(root: Path) -> int:
    _fail(f"stopped; nothing was written to {root} (the run's temporary folder was removed).")
    return 130


def _summary(final: Path, root: Path) -> None:
    from almatools import reports as report

    entry = json.loads((final / report.RUN_FILE).read_text(encoding="utf-8"))
    severities = ", ".join(f"{k} {v:,}" for k, v in entry["by_severity"].items())
    since = (f"{entry['new']:,} new and {entry['resolved']:,} resolved since {entry['previous_run']}"
             if entry.get("previous_run") else "first run in this folder")
    _say(f"Report {final.name}: {entry['findings']:,} findings ({severities}) on {entry['users']:,} users; {since}; "
         f"{entry['duplicate_clusters']:,} duplicate clusters, {entry['merge_proposals']:,} merge proposals"
         + (" (personal data masked)." if entry.get("masked") else "."))
    _say(f"Open {final / 'report.html'} (and report.xlsx beside it); {root / report.LATEST_FILE} names the latest run.")


def _report_by_notebook(args: argparse.Namespace) -> int:
    """Run the ``--notebook`` with papermill into a temporary folder, and move it into place when complete."""
    from almatools import reports as report

    try:
        notebook = report_notebook(args.notebook)
        import papermill
        from papermill.exceptions import PapermillExecutionError
    except (AlmaToolsError, ImportError) as exc:
        return _fail(str(exc))
    root = Path(args.out).expanduser().resolve()
    # SIGTERM (a scheduler's timeout, `kill`) ends the run like Ctrl-C: the temporary folder is removed.
    previous = signal.signal(signal.SIGTERM, _terminated) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        run = report.start_run(root)
    except (AlmaToolsError, OSError) as exc:
        return _fail(f"cannot write into {root}: {exc}")
    output = run.folder / "report.ipynb"
    try:
        try:
            # The kernel logs at ERROR only: its start-up chatter would end up in every cron mail.
            papermill.execute_notebook(str(notebook), str(output), parameters=_parameters(args, run.folder, root),
                                       progress_bar=not args.quiet, cwd=os.getcwd(), kernel_name="python3",
                                       execution_timeout=args.timeout or None,
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"])
        except PapermillExecutionError as exc:
            if args.verbose:
                sys.stderr.write("".join(exc.traceback) + "\n")
            report.abandon_run(run)
            return _fail(f"{_notebook_error(exc)}\nNothing was written to {root} (the run's temporary folder was "
                         "removed; the last complete report is unchanged).")
        except Exception as exc:  # the kernel died, a timeout, no kernel …
            report.abandon_run(run)
            return _fail(f"running {notebook.name} failed: {type(exc).__name__}: {exc}\nNothing was written to "
                         f"{root}.")
        final = report.finish_run(run)
    except KeyboardInterrupt:
        report.abandon_run(run)
        # The kernel's shutdown may signal once more; this process is done and must end with 130, as stopped.
        if previous is not None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
            previous = None
        _fail(f"stopped; nothing was written to {root} (the run's temporary folder was removed).")
        return 130
    except AlmaToolsError as exc:
        report.abandon_run(run)
        return _fail(f"{exc}\nNothing was written to {root}.")
    except BaseException:
        report.abandon_run(run)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    _summary(final, root)
    return 0


def add_report_commands(subparsers: Any) -> None:
    """Register ``report`` on the CLI's subparsers (``parser.add_subparsers()``)."""
    cmd = subparsers.add_parser(
        "report", help="the data-quality report (HTML, Excel, CSV), e.g. on a schedule",
        description="Check the patron records (findings, duplicate clusters, merge proposals) and write a report "
        "for people who do not program: report.html (no code; summary, counts, charts, top findings, duplicate "
        "clusters, merge proposals, trend, new and resolved since the last run), report.xlsx (one sheet per rule), "
        "the CSV files and the executed notebook, into a dated folder under --out that appears only when complete. "
        "--out also keeps the history of runs (history.jsonl). With no --users, the report is on the sandbox's own "
        "data (or, with ALMA_API_KEY set, give the sources). Exit status: 0 done (findings or not), 1 a step failed "
        "(the message names it; nothing was written).")
    cmd.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="the report folder (one dated subfolder per run)")
    cmd.add_argument("--users", metavar="SRC", help="the Alma users: .xml, .zip, .jsonl, .csv or api: "
                     "(default: the sandbox's own users)")
    cmd.add_argument("--sis", metavar="SRC", help="the SIS extract (default: the sandbox's own with no --users, "
                     "else none: the SIS rules are then not checked)")
    cmd.add_argument("--policy", type=Path, metavar="FILE",
                     help="policy file (default: ALMATOOLS_POLICY or the kit's default)")
    cmd.add_argument("--mask-pii", action="store_true", help="replace names, emails and identifiers by tokens in "
                     "the HTML, the workbook and the CSV files")
    cmd.add_argument("--unmasked-csv", action="store_true", help="with --mask-pii: also write the unmasked CSV "
                     "files (into the run's unmasked/ folder)")
    cmd.add_argument("--title", default="Patron data quality", metavar="TEXT",
                     help="the report's heading (default: %(default)s)")
    cmd.add_argument("--period", metavar="TEXT", help='shown under the heading, e.g. "November 2026"')
    cmd.add_argument("--today", metavar="YYYY-MM-DD", help="the day the analysis is as of (default: today)")
    cmd.add_argument("--top", type=_at_least_zero, default=50, metavar="N",
                     help="findings, clusters and merge pairs listed in the HTML (default %(default)s; the workbook "
                     "has all)")
    cmd.add_argument("--no-duplicates", action="store_true", help="skip the duplicate linkage")
    cmd.add_argument("--no-cache", action="store_true", help="parse and link again even when the cache has the result "
                     "(ALMATOOLS_CACHE; see the README)")
    cmd.add_argument("--notebook", type=Path, metavar="FILE",
                     help=f"run this copy of notebooks/{NOTEBOOK_NAME} with papermill instead of the built-in "
                     "report (the executed notebook is kept as report.ipynb)")
    cmd.add_argument("--timeout", type=_at_least_zero, default=0, metavar="SECONDS",
                     help="seconds the report may take (with --notebook: a notebook cell; default: no limit)")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    cmd.set_defaults(func=cmd_report)
