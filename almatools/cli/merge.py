"""The merge commands of the ``almatools`` command line: ``merge-list`` and ``merge-verify``.

Wire them into the CLI's parser with one call: ``add_merge_commands(commands)``, where ``commands`` is
the object ``parser.add_subparsers()`` returned. Each command returns its exit status: 0 done,
1 an error (the message, on standard error, says what to do).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from almatools.cli.common import _say
from almatools.errors import AlmaToolsError
from almatools.files import write_csv

__all__ = ["add_merge_commands", "cmd_merge_list", "cmd_merge_verify"]

log = logging.getLogger(__name__)


def _fail(command: str, message: str) -> int:
    sys.stderr.write(f"almatools {command}: {message}\n")
    return 1


def _load_users(src: str) -> pd.DataFrame:
    """A user source as the patron table (:func:`almatools.sources.load_users`)."""
    from almatools.sources import load_users

    return load_users(src)


def _load_sis_ids(src: str) -> set[str]:
    from almatools.sources import load_sis

    return set(load_sis(src)["primary_id"].astype(str))


def cmd_merge_list(args: argparse.Namespace) -> int:
    """Write the merge proposals (all ``proposed``) of a findings folder into a worklist folder."""
    from almatools.merge import JOURNAL_FILE, Worklist, propose, read_findings

    try:
        clusters, stale = read_findings(args.findings)
        users = _load_users(args.users) if args.users else None
        sis_ids = _load_sis_ids(args.sis) if args.sis else None
        out: Path = args.out
        if Worklist.exists(out):
            journal = out / JOURNAL_FILE
            if journal.exists() and journal.stat().st_size and not args.replace:
                return _fail("merge-list", f"{out} holds a worklist that is being reviewed (it has decisions). Choose "
                             "another --out, or add --replace to start over and lose those decisions.")
        worklist = propose(clusters, users, sis_ids, requests=args.requests,
                           stale_ids=None if sis_ids is not None else stale)
        worklist.save(out, replace=True)
        frame = worklist.to_frame()
        write_csv(frame, out / "proposals.csv")
    except (AlmaToolsError, ValueError) as exc:  # an OSError goes to main(), which names the file and the fix
        return _fail("merge-list", str(exc))
    blocked = int((frame["hard_failures"] != "").sum())
    unchecked = int((frame["not_checked"] != "").sum())
    _say(f"{len(frame)} merge pairs proposed from {clusters['cluster_id'].nunique()} duplicate clusters; "
         f"{len(worklist.held)} held for manual review; {blocked} fail a hard check for now"
         + (f"; {unchecked} not checked: no users source (roles unknown without --users: run the API check "
            "in the review notebook)" if unchecked else "") + ".")
    _say(f"Worklist: {out} (proposals.csv lists the pairs). Review it in notebooks/03_prepare_merge_list.ipynb.")
    return 0


def cmd_merge_verify(args: argparse.Namespace) -> int:
    """Check in Alma that every approved FROM is gone and its TO still exists; exit 1 if any is not done."""
    import almatools
    from almatools.merge import Worklist, verify

    try:
        worklist = Worklist.load(args.worklist)
        with almatools.connect() as client:
            _say(client.banner_text())
            frame = verify(worklist, client)
        write_csv(frame, Path(args.worklist) / "merge_verification.csv")
    except AlmaToolsError as exc:  # an OSError goes to main(), which names the file and the fix
        return _fail("merge-verify", str(exc))
    done = int(frame["done"].sum()) if len(frame) else 0
    _say(f"{done} of {len(frame)} approved pairs done; details in {Path(args.worklist) / 'merge_verification.csv'}.")
    if done < len(frame):
        for row in frame[~frame["done"].astype(bool)].itertuples():
            _say(f"  {row.pair_id}: {row.message}")
        return _fail("merge-verify", f"{len(frame) - done} approved pairs are not done yet.")
    return 0


def add_merge_commands(subparsers: Any) -> None:
    """Register ``merge-list`` and ``merge-verify`` on the CLI's subparsers (``parser.add_subparsers()``)."""
    listing = subparsers.add_parser(
        "merge-list", help="the merge worklist (FROM → TO pairs) of a findings folder, for review",
        description="Turn the duplicate clusters of `almatools quality --out DIR` (and the merge requests recorded "
        "at registration) into FROM → TO pairs into one surviving record each, with the reason and the checks, "
        "all `proposed`. Review them in notebooks/03_prepare_merge_list.ipynb. Writes proposals.json, "
        "decisions.jsonl and proposals.csv into --out. Exit status: 0 done, 1 error.")
    listing.add_argument("--findings", type=Path, required=True, help="folder written by `almatools quality`")
    listing.add_argument("--users", metavar="SRC", help="user source for roles, dates and counts (without it, roles "
                         "are unknown until the API check)")
    listing.add_argument("--sis", metavar="SRC", help="the current SIS extract (default: the findings' "
                         "STALE_SIS_MISSING rows say which SIS records it no longer has)")
    listing.add_argument("--requests", type=Path, help="merge requests CSV recorded at registration")
    listing.add_argument("--out", type=Path, required=True, help="worklist folder to write")
    listing.add_argument("--replace", action="store_true", help="start over in a worklist folder that has decisions")
    listing.set_defaults(func=cmd_merge_list)

    check = subparsers.add_parser(
        "merge-verify", help="after merging in Alma: confirm every FROM is gone and every TO still exists",
        description="Look up every approved pair of a merge worklist in Alma (ALMA_API_KEY, else the sandbox): "
        "FROM must be gone and TO still there. Marks each pair done or not done and writes merge_verification.csv. "
        "Exit status: 0 all done, 1 some not done or an error.")
    check.add_argument("--worklist", type=Path, required=True, help="the worklist folder")
    check.set_defaults(func=cmd_merge_verify)
