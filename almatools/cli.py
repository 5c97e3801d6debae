"""The ``almatools`` command line (also ``python -m almatools``).

The command names and flags are the public contract for scheduled use: keep them stable.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from almatools import __version__
from almatools.errors import AlmaToolsError

__all__ = ["main", "build_parser"]

log = logging.getLogger("almatools")


def _say(message: str) -> None:
    print(message, flush=True)


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


def _sandbox_args(parser: argparse.ArgumentParser) -> None:
    from almatools.sandbox import DEFAULT_USERS

    group = parser.add_argument_group("sandbox")
    group.add_argument("--data", type=Path, help="data folder (default: $ALMATOOLS_DATA/sandbox, "
                       "else ~/.local/share/almatools/sandbox)")
    group.add_argument("--users", type=int, default=DEFAULT_USERS, help="users to generate on first use (default %(default)s)")
    group.add_argument("--seed", type=int, default=0, help="seed of the synthetic institution (default %(default)s)")
    group.add_argument("--reset", action="store_true", help="throw the data away and generate it anew")
    group.add_argument("--latency-ms", type=int, default=0, help="added latency per call, in ms")
    group.add_argument("--fault-rate", type=float, default=0.0, help="share of calls that fail with 5xx or a dropped connection")
    group.add_argument("--per-second", type=int, default=25, help="calls per second before 429 PER_SECOND_THRESHOLD "
                       "(default %(default)s, as Alma; 0 = no limit)")
    group.add_argument("--daily-limit", type=int, default=200_000, help="calls per day before 429 DAILY_THRESHOLD "
                       "(default %(default)s; 0 = no limit)")
    group.add_argument("--api-key", help="the key the sandbox accepts (default: one made on first use and kept)")


def _start_sandbox(args: argparse.Namespace, *, host: str, port: int):
    from almatools.sandbox import start_sandbox

    if args.users < 1 or args.users > 1_000_000:
        raise AlmaToolsError(f"--users must be between 1 and 1,000,000, not {args.users}.")
    if not 0 <= args.fault_rate < 1:
        raise AlmaToolsError(f"--fault-rate must be at least 0 and below 1, not {args.fault_rate}.")
    return start_sandbox(args.data, users=args.users, seed=args.seed, reset=args.reset, api_key=args.api_key,
                         host=host, port=port, progress=True, latency_ms=args.latency_ms,
                         fault_rate=args.fault_rate, per_second=args.per_second, daily_limit=args.daily_limit)


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Serve the sandbox until interrupted."""
    server = _start_sandbox(args, host=args.host, port=args.port)
    try:
        _say(f"ALMA_BASE_URL={server.base_url}")
        _say(f"ALMA_API_KEY={server.api_key}")
        _say(f"The Alma sandbox is serving {server.data_dir} at {server.base_url} (Ctrl-C stops it).")
        _wait_for_stop()
    finally:
        server.stop()
    return 0


def _notebook_dir(explicit: Path | None) -> Path:
    from almatools.config import CHECKOUT

    if explicit is not None:
        return explicit
    for candidate in (Path.cwd() / "notebooks", CHECKOUT / "notebooks" if CHECKOUT else None):
        if candidate is not None and candidate.is_dir():
            return candidate
    raise AlmaToolsError("No notebooks folder here: run from the kit's checkout, or give --notebooks DIR.")


def _free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _serve(args: argparse.Namespace, mode: str) -> int:
    """Start the sandbox (unless ALMA_API_KEY is set), prepare the workspace, run Lab or Voila until stopped."""
    from almatools import app
    from almatools.config import Settings, child_environment, workspace

    settings = Settings.from_env()
    folder = (args.workspace or workspace()).expanduser().absolute()
    prepared = app.prepare_workspace(folder, _notebook_dir(args.notebooks).absolute())
    updates = {"ALMATOOLS_WORKSPACE": str(folder), "ALMATOOLS_UI": mode, "ALMATOOLS_SERVER_ROOT": str(folder)}
    server = None
    if settings.api_key:
        _say(f"Working against Alma at {settings.base_url} (ALMA_API_KEY is set): PRODUCTION data.")
    else:
        port = args.sandbox_port
        if port and not _free(port):
            _say(f"Port {port} is taken: the sandbox takes a free one instead.")
            port = 0
        server = _start_sandbox(args, host="127.0.0.1", port=port)
        updates.update(ALMA_BASE_URL=server.base_url, ALMA_API_KEY=server.api_key)
        data_dir = Path(server.data_dir)
        if data_dir.name == "sandbox":  # the kernels find its SIS extract where they look: $ALMATOOLS_DATA/sandbox
            updates["ALMATOOLS_DATA"] = str(data_dir.parent)
        else:
            _say(f"Note: the notebooks look for the sandbox's SIS extract in a folder named sandbox; {data_dir} is "
                 "not one, so they will read the users through the API and have no SIS extract.")
        _say(f"The Alma sandbox is running at {server.base_url} (data in {server.data_dir}).")
    _say(f"Workspace: {folder} ({len(prepared.notebooks)} notebooks; every output lands here by default).")
    if prepared.copied:
        _say(f"Notebooks copied into the workspace from the kit: {', '.join(prepared.copied)}.")
    for name in prepared.kept:
        _say(f"Kept your changed copy of {name}; the kit's newer version is {_notebook_dir(args.notebooks) / name} "
             "(delete the workspace copy to get it).")
    extra = list(args.jupyter_args)
    if mode == "lab":
        root = app.running_as_root() or args.allow_root
        if app.running_as_root():
            _say("Running as root: JupyterLab is started with --allow-root.")
        command = app.lab_command(folder, port=args.port, allow_root=root, open_browser=not args.no_browser,
                                  extra=extra)
        _say(f"Starting JupyterLab on port {args.port}; open the http://127.0.0.1 URL it prints below "
             "(with its token). Ctrl-C stops it and the sandbox.")
    else:
        command = app.app_command(folder, port=args.port, open_browser=not args.no_browser, extra=extra)
        _say(f"Starting the app (Voila) at http://127.0.0.1:{args.port}/ : one page per task, no code. "
             "Ctrl-C stops it and the sandbox.")
    try:
        prepend = {"JUPYTER_PATH": str(app.APP_JUPYTER_PATH)} if mode == "app" else None
        child = subprocess.Popen(command, env=child_environment(updates, prepend=prepend))
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            try:
                return child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                return child.wait()
    finally:
        if server is not None:
            server.stop()


def cmd_lab(args: argparse.Namespace) -> int:
    """JupyterLab on the workspace, with the sandbox running unless ALMA_API_KEY is set."""
    return _serve(args, "lab")


def cmd_app(args: argparse.Namespace) -> int:
    """The notebooks as Voila apps (no code), with the sandbox running unless ALMA_API_KEY is set."""
    return _serve(args, "app")


def _client(dry_run: bool = False):
    """A client of real Alma when ALMA_API_KEY is set, else of the sandbox (started in this process)."""
    import almatools

    return almatools.connect(dry_run=dry_run)


def cmd_register(args: argparse.Namespace) -> int:
    """Bulk registration from a CSV file; exit 0 when every valid row is done, 1 when a run stopped early,
    3 when some rows were invalid or refused (see the issue file)."""
    from almatools.bulk import register_csv
    from almatools.policy import load_policy
    from almatools.ui.banner import banner_text

    policy = load_policy(args.policy)
    with _client(args.dry_run) as client:
        _say(banner_text(client))
        result = register_csv(client, args.csv, policy, out_dir=args.out, progress=not args.quiet,
                              workers=args.workers, renew_existing=args.renew, merge_requests=args.merge_requests)
    dry = " (dry run)" if args.dry_run else ""
    _say(f"{result.rows} rows: {result.created} created{dry}, {result.renewed} existing accounts renewed{dry}, "
         f"{result.already_done} done in an earlier run, {result.invalid} invalid, {result.refused} refused (the "
         f"person has an account, or Alma refused); {result.calls} API calls.")
    _say(f"Problems per row: {result.issues_path}")
    if result.merge_requests:
        _say(f"{result.merge_requests} merge requests (old account -> new account): {result.merge_requests_path}")
    if result.stopped:
        print(f"almatools register: stopped early: {result.stopped}", file=sys.stderr)
        return 1
    return 3 if (result.invalid or result.refused) else 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Every user's full record from the API to a JSON lines file; a re-run resumes."""
    from almatools.sources import snapshot
    from almatools.ui.banner import banner_text

    with _client() as client:
        _say(banner_text(client))
        result = snapshot(client, args.out, progress=not args.quiet, reserve=args.reserve)
    how = "full records listed page by page" if result.full_pages else "each record fetched"
    _say(f"{result.path}: {result.written:,} users written, {result.already:,} already there from an earlier run, "
         f"{result.failed:,} could not be fetched; {result.calls:,} API calls ({how}).")
    return 1 if result.failed else 0


def cmd_quality(args: argparse.Namespace) -> int:
    """Findings and duplicate clusters of a users source against a SIS extract; exit 0 with or without findings."""
    import datetime as dt

    from almatools.policy import load_policy
    from almatools.quality import analyse, write_outputs
    from almatools.sources import load_sources

    try:
        today = dt.date.fromisoformat(args.today) if args.today else None
    except ValueError:
        raise AlmaToolsError(f"--today must be a date like 2025-03-14, not {args.today!r}.") from None
    policy = load_policy(args.policy)
    skipped: list[str] = []

    def bad(err) -> None:
        skipped.append(str(err))
        if len(skipped) <= 20:
            print(f"almatools quality: skipped a bad record: {_one_line(str(err))}", file=sys.stderr)
    for flag, value in (("--users", args.users), ("--sis", args.sis)):
        if not value.strip():  # load_sources reads "" as "the sandbox's own data": the command wants it said
            raise AlmaToolsError(f"{flag} is empty: give a file" + (", or api:" if flag == "--users" else ", or none"))
    client = _client() if args.users.strip().lower() == "api:" else None
    try:
        loaded = load_sources(args.users, args.sis, policy=policy, client=client, on_error=bad,
                              progress=not args.quiet)
    finally:
        if client is not None:
            client.close()
    users, sis = loaded.users, loaded.sis
    from almatools.quality.review import DECISIONS_FILE

    decisions = args.decisions or (args.out / DECISIONS_FILE)
    result = analyse(users, sis, policy, today=today, duplicates=not args.no_duplicates, progress=not args.quiet,
                     decisions=decisions)
    # Patron data in the CSV files is escaped so that no spreadsheet runs it as a formula.
    files = write_outputs(result, args.out)
    _say(result.summary_text())
    _say("Written: " + ", ".join(str(p) for p in files.values()))
    if skipped:
        print(f"almatools quality: {len(skipped):,} bad records were skipped (see load_errors.csv)", file=sys.stderr)
        return 1 if args.strict else 0
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (also used to document them)."""
    parser = argparse.ArgumentParser(
        prog="almatools",
        description="A Jupyter operations kit for Ex Libris Alma patron data. With no ALMA_API_KEY set, "
                    "everything works against the local sandbox.")
    parser.add_argument("--version", action="version", version=f"almatools {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sandbox = commands.add_parser("sandbox", help="serve the local Alma sandbox",
                                  description="Serve a local server that answers like Alma's Users API, "
                                  "seeded with a synthetic institution. Prints ALMA_BASE_URL= and ALMA_API_KEY= lines.")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    sandbox.add_argument("--port", type=int, default=8990, help="port (default %(default)s; 0 picks a free one)")
    _sandbox_args(sandbox)
    sandbox.set_defaults(func=cmd_sandbox)

    from almatools.app import APP_PORT, LAB_PORT, SANDBOX_PORT

    for name, port, what in (("lab", LAB_PORT, "JupyterLab"), ("app", APP_PORT, "Voila")):
        if name == "lab":
            helptext = "JupyterLab on the workspace, with the sandbox unless ALMA_API_KEY is set"
            description = ("Start the sandbox (unless ALMA_API_KEY is set) and JupyterLab on the workspace folder "
                           "(work/ in the checkout), where the kit's notebooks are linked and every output lands. "
                           "Run as root, it passes --allow-root to JupyterLab itself. Arguments after -- go to "
                           "JupyterLab.")
        else:
            helptext = "the notebooks as apps with no code (Voila), with the sandbox unless ALMA_API_KEY is set"
            description = ("Start the sandbox (unless ALMA_API_KEY is set) and Voila on the workspace folder: each "
                           "notebook is a page with its widgets and no code, and the landing page at / lists them. "
                           "Arguments after -- go to Voila.")
        sub = commands.add_parser(name, help=helptext, description=description)
        sub.add_argument("--port", type=int, default=port, help=f"{what}'s port (default %(default)s)")
        sub.add_argument("--sandbox-port", type=int, default=SANDBOX_PORT,
                         help="the sandbox's port (default %(default)s; a free one when it is taken; 0 = any free one)")
        sub.add_argument("--workspace", type=Path, help="the workspace folder (default: ALMATOOLS_WORKSPACE, else "
                         "work/ in the kit's checkout)")
        sub.add_argument("--notebooks", type=Path, help="folder of notebooks (default: the kit's notebooks/)")
        sub.add_argument("--no-browser", action="store_true", help="do not open a web browser")
        sub.add_argument("--allow-root", action="store_true",
                         help="accepted for habit's sake: as root, JupyterLab gets --allow-root anyway "
                         "(Voila needs none)")
        _sandbox_args(sub)
        sub.add_argument("jupyter_args", nargs=argparse.REMAINDER, help=f"arguments for {what}, after --")
        sub.set_defaults(func=cmd_lab if name == "lab" else cmd_app)

    register = commands.add_parser(
        "register", help="register patrons from a CSV file (validated, journaled, resumable)",
        description="Validate every row of a CSV file against the policy, write the problems to NAME.issues.csv, "
        "and create the valid patrons in Alma. A journal (NAME.journal.jsonl) makes a re-run resume where it "
        "stopped without creating anyone twice. Passwords are never written to any file. Exit status: 0 all done, "
        "1 stopped early (re-run to resume), 3 some rows invalid or refused.")
    register.add_argument("--csv", type=Path, required=True, help="the CSV file (columns: see README)")
    register.add_argument("--policy", type=Path, help="policy file (default: ALMATOOLS_POLICY or the kit's default)")
    register.add_argument("--out", type=Path, help="folder for the journal and the issue file (default: beside the CSV)")
    register.add_argument("--dry-run", action="store_true", help="validate and plan; send nothing to Alma")
    register.add_argument("--workers", type=int, default=8, help="rows sent at once (default %(default)s)")
    register.add_argument("--renew", action="store_true",
                          help="renew the existing account of a person who has one (new expiry and purge date from "
                               "the group's defaults) instead of only reporting it")
    register.add_argument("--merge-requests", type=Path,
                          help="merge-request CSV for former affiliates (default: merge_requests.csv in --out)")
    register.add_argument("--quiet", action="store_true", help="no progress bar")
    register.set_defaults(func=cmd_register)

    snap = commands.add_parser(
        "snapshot", help="every user's full record from the API to a JSON lines file (resumable)",
        description="List every user and write their full records, one JSON object per line. The number of API "
        "calls is checked against the day's remaining quota before it starts; a re-run on the same file skips the "
        "users already written. Exit status: 0 done, 1 some users could not be fetched (re-run to retry them).")
    snap.add_argument("--out", type=Path, required=True, help="the .jsonl file to write (appended to if it exists)")
    snap.add_argument("--reserve", type=int, default=500, help="API calls to leave for the rest of the day "
                      "(default %(default)s)")
    snap.add_argument("--quiet", action="store_true", help="no progress bar")
    snap.set_defaults(func=cmd_snapshot)

    quality = commands.add_parser(
        "quality", help="findings (stale, policy, SIS mismatch) and duplicate clusters",
        description="Check a users source against the SIS extract and the policy, and link duplicate records. "
        "Writes findings.csv, duplicates.csv (likely duplicates), possible_duplicates.csv (pairs to review), "
        "summary.json and summary.txt to --out (and load_errors.csv when bad records were skipped). Staff decisions "
        "on pairs (same person / different people) are read from --decisions. A source is an Alma user .xml, a .zip of them, .jsonl, .csv or api:. Exit status: "
        "0 done (findings or not), 1 a source could not be read (or, with --strict, had bad records).")
    quality.add_argument("--users", required=True, metavar="SRC", help="the Alma users: file or api:")
    quality.add_argument("--sis", required=True, metavar="SRC", help="the SIS extract (file), or none")
    quality.add_argument("--policy", type=Path, help="policy file (default: ALMATOOLS_POLICY or the kit's default)")
    quality.add_argument("--today", help="the day the analysis is as of, YYYY-MM-DD (default: today)")
    quality.add_argument("--out", type=Path, required=True, help="folder for the output files")
    quality.add_argument("--no-duplicates", action="store_true", help="skip the duplicate linkage")
    quality.add_argument("--decisions", type=Path, help="staff decisions on duplicate pairs, kept between runs "
                         "(default: OUT/pair_decisions.jsonl, which notebook 02's review writes)")
    quality.add_argument("--strict", action="store_true", help="exit 1 when a source had bad records")
    quality.add_argument("--quiet", action="store_true", help="no progress bars")
    quality.set_defaults(func=cmd_quality)

    from almatools.cli_merge import add_merge_commands

    add_merge_commands(commands)
    from almatools.cli_report import add_report_commands

    add_report_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the exit status (0 success, 1 a reported error, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "jupyter_args", None) and args.jupyter_args[0] == "--":
        args.jupyter_args = args.jupyter_args[1:]
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except AlmaToolsError as exc:
        return _fail(args.command, str(exc))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # a folder that is a file, a full disk, a permission: say which file and why
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        what = exc.strerror or exc.__class__.__name__
        hint = " (--out must be a folder, or a path whose parents are folders)" if isinstance(
            exc, (NotADirectoryError, FileExistsError)) else ""
        return _fail(args.command, f"{where}{what}{hint}")
    except MemoryError:
        return _fail(args.command, "ran out of memory; give it a smaller source or a machine with more memory")
    except Exception as exc:  # the last line of defence: one line, the traceback only with -v
        if args.verbose:
            log.error("where it happened", exc_info=True)
        return _fail(args.command, f"unexpected {exc.__class__.__name__}: {_one_line(str(exc))} "
                     "(run with -v to see where; please report it)")


def _one_line(text: str, limit: int = 300) -> str:
    """A message on one line, cut to ``limit`` characters (a hostile value can be megabytes long)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _fail(command: str, message: str) -> int:
    print(f"almatools {command}: {_one_line(message, 2000)}", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
