"""``almatools register``: bulk registration from a CSV file, with a journal."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from almatools.cli.common import _at_least_one, _client, _say, _warn

__all__ = ["add_register_commands", "cmd_register"]


def cmd_register(args: argparse.Namespace) -> int:
    """Bulk registration from a CSV file; exit 0 when every valid row is done, 1 when a run stopped early,
    3 when some rows were invalid or refused (see the issue file)."""
    from almatools.bulk import register_csv
    from almatools.policy import load_policy

    policy = load_policy(args.policy)
    with _client(args.dry_run) as client:
        _say(client.banner_text())
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
        _warn(f"almatools register: stopped early: {result.stopped}")
        return 1
    return 3 if (result.invalid or result.refused) else 0


def add_register_commands(commands: Any) -> None:
    """Register ``register`` on the CLI's subparsers."""
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
    register.add_argument("--workers", type=_at_least_one, default=8, help="rows sent at once (default %(default)s)")
    register.add_argument("--renew", action="store_true",
                          help="renew the existing account of a person who has one (new expiry and purge date from "
                               "the group's defaults) instead of only reporting it")
    register.add_argument("--merge-requests", type=Path,
                          help="merge-request CSV for former affiliates (default: merge_requests.csv in --out)")
    register.add_argument("--quiet", action="store_true", help="no progress bar")
    register.set_defaults(func=cmd_register)
