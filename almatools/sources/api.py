"""Users from the live API: every user (``api:``), an Analytics report, and the resumable snapshot."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from almatools.errors import AlmaError, ConfigError, JournalError, SourceError
from almatools.files import AppendLog
from almatools.models import RecordError
from almatools.quality.frame import (
    USER_COLUMNS,
    rows_frame,
    user_row,
)

if TYPE_CHECKING:
    from almatools.client import AlmaClient
from almatools.sources.base import MAX_FIELD_CHARS, MAX_RECORD_BYTES, LoadReport

log = logging.getLogger(__name__)

@dataclass
class SnapshotResult:
    """What :func:`snapshot` did.

    Attributes:
        path: The JSON lines file.
        total: Users Alma reported.
        written: Records written by this run.
        already: Records the file held from an earlier run (skipped).
        failed: Users that could not be fetched (deleted meanwhile…); they are logged.
        calls: API calls this run made.
        full_pages: Whether the list gave full records (``expand=full``), so no per-user calls were needed.
    """

    path: Path
    total: int = 0
    written: int = 0
    already: int = 0
    failed: int = 0
    calls: int = 0
    full_pages: bool = True


def _pages(client: AlmaClient, page_size: int) -> Iterator[list[dict[str, Any]]]:
    """Every page of ``GET /users`` (full records where the server honours ``expand=full``), until an empty one."""
    offset = 0
    while True:
        body = client.request("GET", "/users", params={"limit": page_size, "offset": offset, "order_by": "primary_id",
                                                      "expand": "full"}) or {}
        page = body.get("user") or []
        page = [page] if isinstance(page, dict) else page
        if not page:
            return
        offset += len(page)
        yield page


def _api_users(client: AlmaClient, *, done: set[str], progress: bool, reserve: int, page_size: int,
               result: SnapshotResult) -> Iterator[dict[str, Any]]:
    """Full user records not in ``done`` (case-folded primary ids), after checking the day's quota."""
    before = client.calls
    result.total = client.search_users().count()
    pages = _pages(client, page_size)
    first = next(pages, [])
    result.full_pages = all("account_type" in e for e in first)
    need = math.ceil(result.total / page_size) + (0 if result.full_pages else max(0, result.total - len(done)))
    client.check_budget(need, reserve=reserve)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=result.total, initial=min(len(done), result.total), unit="user", desc="snapshot")

    def entries() -> Iterator[dict[str, Any]]:
        for page in _chain(first, pages):
            for entry in page:
                key = str(entry.get("primary_id", "")).casefold()
                if key and key not in done:
                    done.add(key)
                    yield entry

    def failed(uid: str, err: AlmaError) -> None:
        result.failed += 1
        log.warning("snapshot: user %s could not be fetched: %s", uid, err)
    try:
        if result.full_pages:
            records: Iterable[dict[str, Any]] = entries()
        else:
            records = client.fetch_users((e["primary_id"] for e in entries()), on_error=failed)
        for record in records:
            if bar is not None:
                bar.update(1)
            yield record
    finally:
        result.calls = client.calls - before
        if bar is not None:
            bar.close()


def _chain(first: list[dict[str, Any]], rest: Iterator[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    yield first
    yield from rest


def _client(client: AlmaClient | None) -> AlmaClient:
    if client is not None:
        return client
    import almatools

    return almatools.connect()


def _api_frame(client: AlmaClient | None, ptype: str, report: LoadReport, progress: bool) -> pd.DataFrame:
    client = _client(client)
    result = SnapshotResult(Path("api:"))
    rows = []
    for user in _api_users(client, done=set(), progress=progress, reserve=500, page_size=100, result=result):
        row = user_row(user, patron_type_category_type=ptype)
        rows.append(tuple(row[c] for c in USER_COLUMNS))
    report.notes.append(f"{result.calls:,} API calls; {result.failed:,} users could not be fetched")
    return rows_frame(rows)


ANALYTICS_HEADINGS = {
    "Primary Identifier": "primary_id", "First Name": "first_name", "Middle Name": "middle_name",
    "Last Name": "last_name", "User Group Code": "user_group", "Account Type": "account_type",
    "External Id": "external_id", "Status": "status", "User Record Type": "record_type",
    "Expiry Date": "expiry_date", "Purge Date": "purge_date", "Birth Date": "birth_date",
    "Preferred Email": "email", "Preferred Phone": "phone", "Preferred First Name": "pref_first_name",
}
"""Analytics column headings (Users subject area) the ``analytics:PATH`` source reads; only
``Primary Identifier`` is required, other columns are ignored."""
_CODED = ("user_group", "account_type", "status", "record_type")


def _analytics_frame(client: AlmaClient | None, path: str, ptype: str,
                     bad: Callable[[RecordError], None]) -> pd.DataFrame:
    """A users report from Alma Analytics, read by column heading (see :data:`ANALYTICS_HEADINGS`)."""
    if not path:
        raise SourceError("analytics: needs the report's path, e.g. 'analytics:/shared/My University/Reports/Users'")
    client = _client(client)
    rows = []
    for n, cells in enumerate(client.analytics_rows(path), start=1):
        if n == 1 and "Primary Identifier" not in cells:
            raise SourceError(f"the Analytics report {path} has no 'Primary Identifier' column; its columns are "
                              f"{', '.join(cells) or 'none'} (the kit reads {', '.join(ANALYTICS_HEADINGS)})")
        long = next((h for h, v in cells.items() if not isinstance(v, str) or len(v) > MAX_FIELD_CHARS), None)
        if long is not None:
            bad(RecordError(f"more than {MAX_FIELD_CHARS:,} characters (or not text)", file=path, record=n,
                            field=str(long)[:80]))
            continue
        fields = {ANALYTICS_HEADINGS[h]: v.strip() for h, v in cells.items() if h in ANALYTICS_HEADINGS and v.strip()}
        if not fields.get("primary_id"):
            bad(RecordError("the row has no primary identifier", file=path, record=n, field="Primary Identifier"))
            continue
        user: dict[str, Any] = {k: ({"value": v} if k in _CODED else v) for k, v in fields.items()
                                if k not in ("email", "phone")}
        contact: dict[str, Any] = {}
        if fields.get("email"):
            contact["email"] = [{"email_address": fields["email"], "preferred": True}]
        if fields.get("phone"):
            contact["phone"] = [{"phone_number": fields["phone"], "preferred": True}]
        if contact:
            user["contact_info"] = contact
        try:
            row = user_row(user, patron_type_category_type=ptype)
        except (ValueError, TypeError) as err:
            bad(RecordError(str(err), file=path, record=n))
            continue
        rows.append(tuple(row[c] for c in USER_COLUMNS))
    return rows_frame(rows)


def _written_ids(journal: AppendLog) -> set[str]:
    """Primary ids (case-folded) already in a snapshot file (the kit's torn-tail policy: a torn last
    record is cut off and written again; a damaged record before it is an error naming its line)."""
    done: set[str] = set()
    for number, record in journal.numbered():
        if not isinstance(record.get("primary_id"), str):
            raise SourceError(f"{journal.path}: line {number} is not an Alma user (no primary_id); fix or remove "
                              "that line, or delete the file to take the snapshot afresh.")
        done.add(record["primary_id"].casefold())
    if journal.repair():
        log.warning("snapshot: %s ended in an incomplete record; it is written again", journal.path)
    return done


def snapshot(client: AlmaClient, out_path: str | os.PathLike[str], *, progress: bool = False, reserve: int = 500,
             page_size: int = 100) -> SnapshotResult:
    """Write every user's full record to a JSON lines file (one Alma user object per line).

    The users are listed page by page, ordered by primary id. Where the server returns full records
    with the list (``expand=full``), that is one call per ``page_size`` users; otherwise each record is
    fetched, concurrently within the client's throttle. The number of calls is estimated and checked
    against the day's remaining quota before the work starts (:meth:`AlmaClient.check_budget`).
    Resumable: run it again on the same file and users already written are skipped.

    Args:
        client: The Alma client.
        out_path: The ``.jsonl`` file (appended to when it exists).
        progress: Show a progress bar.
        reserve: Calls to leave for the rest of the day.
        page_size: Users per list call (at most 100).

    Raises:
        QuotaExhaustedError: The snapshot needs more calls than are left (less the reserve).
        AlmaError: Alma failed in a way the client could not retry away.
    """
    if not 1 <= page_size <= 100:
        raise ConfigError(f"page_size must be 1 to 100 (Alma's limit), not {page_size}")
    path = Path(out_path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    journal = AppendLog(path, sort_keys=False, max_line_bytes=MAX_RECORD_BYTES)
    try:
        done = _written_ids(journal)
    except JournalError as err:
        raise SourceError(str(err)) from None
    result = SnapshotResult(path, already=len(done))
    with journal.writer(flush_every=500) as write:
        for record in _api_users(client, done=done, progress=progress, reserve=reserve, page_size=page_size,
                                 result=result):
            write(record)
            result.written += 1
    return result
