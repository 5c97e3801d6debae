"""``almatools snapshot`` and ``almatools quality``: every user to a file, and the findings and duplicate clusters."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from almatools.cli.common import _at_least_zero, _client, _one_line, _say, _warn
from almatools.errors import AlmaToolsError

__all__ = ["add_quality_commands", "cmd_quality", "cmd_snapshot"]


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Every user's full record from the API to a JSON lines file; a re-run resumes."""
    from almatools.sources import snapshot

    with _client() as client:
        _say(client.banner_text())
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
            _warn(f"almatools quality: skipped a bad record: {_one_line(str(err))}")
    for flag, value in (("--users", args.users), ("--sis", args.sis)):
        if not value.strip():  # load_sources reads "" as "the sandbox's own data": the command wants it said
            raise AlmaToolsError(f"{flag} is empty: give a file" + (", or api:" if flag == "--users" else ", or none"))
    client = _client() if args.users.strip().lower() == "api:" else None
    try:
        loaded = load_sources(args.users, args.sis, policy=policy, client=client, on_error=bad,
                              progress=not args.quiet, cache=not args.no_cache)
    finally:
        if client is not None:
            client.close()
    users, sis = loaded.users, loaded.sis
    from almatools.quality.review import DECISIONS_FILE

    decisions = args.decisions or (args.out / DECISIONS_FILE)
    result = analyse(users, sis, policy, today=today, duplicates=not args.no_duplicates, progress=not args.quiet,
                     decisions=decisions, cache=not args.no_cache)
    # Patron data in the CSV files is escaped so that no spreadsheet runs it as a formula.
    files = write_outputs(result, args.out)
    _say(result.summary_text())
    _say("Written: " + ", ".join(str(p) for p in files.values()))
    if skipped:
        _warn(f"almatools quality: {len(skipped):,} bad records were skipped (see load_errors.csv)")
        return 1 if args.strict else 0
    return 0


def add_quality_commands(commands: Any) -> None:
    """Register ``snapshot`` and ``quality`` on the CLI's subparsers."""
    snap = commands.add_parser(
        "snapshot", help="every user's full record from the API to a JSON lines file (resumable)",
        description="List every user and write their full records, one JSON object per line. The number of API "
        "calls is checked against the day's remaining quota before it starts; a re-run on the same file skips the "
        "users already written. Exit status: 0 done, 1 some users could not be fetched (re-run to retry them).")
    snap.add_argument("--out", type=Path, required=True, help="the .jsonl file to write (appended to if it exists)")
    snap.add_argument("--reserve", type=_at_least_zero, default=500, help="API calls to leave for the rest of the day "
                      "(default %(default)s)")
    snap.add_argument("--quiet", action="store_true", help="no progress bar")
    snap.set_defaults(func=cmd_snapshot)

    quality = commands.add_parser(
        "quality", help="findings (stale, policy, SIS mismatch) and duplicate clusters",
        description="Check a users source against the SIS extract and the policy, and link duplicate records. "
        "Writes findings.csv, duplicates.csv (likely duplicates), possible_duplicates.csv (pairs to review), "
        "summary.json and summary.txt to --out (and load_errors.csv when bad records were skipped). Staff decisions "
        "on pairs (same person / different people) are read from --decisions. A source is an Alma user .xml, "
        "a .zip of them, .jsonl, .csv or api:. Exit status: "
        "0 done (findings or not), 1 a source could not be read (or, with --strict, had bad records).")
    quality.add_argument("--users", required=True, metavar="SRC", help="the Alma users: file or api:")
    quality.add_argument("--sis", required=True, metavar="SRC", help="the SIS extract (file), or none")
    quality.add_argument("--policy", type=Path, help="policy file (default: ALMATOOLS_POLICY or the kit's default)")
    quality.add_argument("--today", help="the day the analysis is as of, YYYY-MM-DD (default: today)")
    quality.add_argument("--out", type=Path, required=True, help="folder for the output files")
    quality.add_argument("--no-duplicates", action="store_true", help="skip the duplicate linkage")
    quality.add_argument("--no-cache", action="store_true", help="parse and link again even when the cache has the result "
                         "(ALMATOOLS_CACHE; see the README)")
    quality.add_argument("--decisions", type=Path, help="staff decisions on duplicate pairs, kept between runs "
                         "(default: OUT/pair_decisions.jsonl, which notebook 02's review writes)")
    quality.add_argument("--strict", action="store_true", help="exit 1 when a source had bad records")
    quality.add_argument("--quiet", action="store_true", help="no progress bars")
    quality.set_defaults(func=cmd_quality)
