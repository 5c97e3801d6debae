"""Loading a source by its kind (:func:`load_users`, :func:`load_sis`), and both sources of an analysis
(:func:`load_sources`).
"""

from __future__ import annotations

import logging
import math
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from almatools.errors import SourceError
from almatools.files import input_problem
from almatools.models import RecordError

if TYPE_CHECKING:
    from almatools.client import AlmaClient
    from almatools.policy import Policy
from almatools.sources import xml_parts
from almatools.sources.api import _analytics_frame, _api_frame
from almatools.sources.base import MAX_ZIP_MEMBERS, LoadReport, OnError, load_report
from almatools.sources.cache import parse_cache
from almatools.sources.csvfile import _csv_frame
from almatools.sources.pool import _run, _Task, _workers

log = logging.getLogger(__name__)

_JSONL_PART = 64 << 20


def _kind(path: Path) -> str:
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic.startswith(b"\x1f\x8b"):  # whatever its name says: a reader would only see binary
        raise SourceError(f"{path} is gzip-compressed: unpack it first (e.g. gunzip, or 7-Zip) and give the file inside")
    if magic.startswith(b"\xd0\xcf\x11\xe0"):
        raise SourceError(f"{path} is an Excel workbook (.xls), not a user file: save it as 'CSV UTF-8 (Comma "
                          "delimited)' with the documented columns")
    suffix = path.suffix.lower()
    if suffix in (".xml", ".zip", ".csv"):
        return suffix[1:]
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"PK"):
        return "zip"
    if head.startswith(b"<"):
        return "xml"
    if head.startswith(b"{"):
        return "jsonl"
    raise SourceError(f"{path}: unknown kind of file; give an Alma user .xml, a .zip of them, .jsonl or .csv")


def _tasks(path: Path, kind: str, workers: int | None) -> list[_Task]:
    if kind == "zip":
        try:
            with zipfile.ZipFile(path) as zf:
                every = [i for i in zf.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise SourceError(f"{path} is not a readable zip file: {err}") from None
        if any(i.filename in ("[Content_Types].xml", "xl/workbook.xml") for i in every[:50]):
            raise SourceError(f"{path} is an Excel workbook (or another Office document), not a zip of Alma user "
                              "XML: save it as 'CSV UTF-8 (Comma delimited)' with the documented columns")
        members = [i for i in every if i.filename.lower().endswith(".xml")]
        if not members:
            held = ", ".join(i.filename[:60] for i in every[:3]) + (", …" if len(every) > 3 else "")
            raise SourceError(f"{path} holds no .xml files" + (f" (it holds {held}; a zip inside the zip must be "
                              "unpacked first)" if every else " (it is empty)"))
        if len(members) > MAX_ZIP_MEMBERS:
            raise SourceError(f"{path} holds {len(members):,} .xml files, more than the limit of {MAX_ZIP_MEMBERS:,}")
        # Members go in batches (about 4 per worker, at most 32 MiB each): each batch opens the zip once.
        total = sum(i.file_size for i in members)
        target = max(1, min(32 << 20, total // (4 * _workers(workers)) or 1))
        tasks: list[_Task] = []
        batch: list[zipfile.ZipInfo] = []
        for info in members:
            batch.append(info)
            if sum(i.file_size for i in batch) >= target or len(batch) >= 2000:
                tasks.append(_Task("zip", str(path), tuple(i.filename for i in batch),
                                   size=sum(i.file_size for i in batch)))
                batch = []
        if batch:
            tasks.append(_Task("zip", str(path), tuple(i.filename for i in batch), size=sum(i.file_size for i in batch)))
        return tasks
    size = path.stat().st_size
    if kind == "jsonl" and size > _JSONL_PART and _workers(workers) > 1:
        bounds = [0]
        with open(path, "rb") as fh:  # cut at line starts (read in bounded pieces: a line may be huge)
            for k in range(1, math.ceil(size / _JSONL_PART)):
                fh.seek(max(k * _JSONL_PART, bounds[-1]))
                while (piece := fh.readline(1 << 20)) and not piece.endswith(b"\n"):
                    pass
                if fh.tell() >= size:
                    break  # the last line runs to the end: no later cut can be found
                if fh.tell() > bounds[-1]:
                    bounds.append(fh.tell())
        bounds.append(size)
        return [_Task("jsonl", str(path), start=a, end=b, size=b - a) for a, b in zip(bounds, bounds[1:])]
    if kind == "xml" and size > xml_parts.PART_BYTES and (n := _workers(workers)) > 1:
        # Parts at <user> start tags, about 4 per worker (at most PART_BYTES each); a file that cannot be
        # cut safely (see xml_parts) is read whole, and so is one whose parts do not all read (see _run).
        try:
            with open(path, "rb") as fh:
                split = xml_parts.split_points(fh, size, min(xml_parts.PART_BYTES, max(1, size // (4 * n))))
        except OSError as err:
            raise SourceError(f"{path} cannot be read: {err}") from None
        if split is not None:
            b = split.bounds
            return [_Task("xmlpart", str(path), start=b[k], end=b[k + 1], size=b[k + 1] - b[k],
                          head=split.head if k else b"", tail=split.tail if k + 2 < len(b) else b"")
                    for k in range(len(b) - 1)]
    return [_Task(kind, str(path), size=size)]


def _load(src: str | os.PathLike[str], *, on_error: OnError, progress: bool, client: AlmaClient | None,
          policy: Policy | None, workers: int | None, label: str, cache: bool) -> pd.DataFrame:
    started = time.monotonic()
    ptype = policy.patron_type_category_type if policy is not None else "PATRON_TYPE"
    text = os.fspath(src)
    report = LoadReport(text, "api")

    def bad(err: RecordError) -> None:
        if on_error == "raise":
            raise SourceError(f"bad record: {err}")
        report.add_error(err)
        if callable(on_error):
            on_error(err)
    if text.strip().lower() == "api:":
        report.files = ["api:"]
        frame = _api_frame(client, ptype, report, progress)
    elif text.strip().lower().startswith("analytics:"):
        report.kind, report.files = "analytics", [text.strip()]
        frame = _analytics_frame(client, text.strip()[len("analytics:"):].strip(), ptype, bad)
    else:
        path = Path(text).expanduser()
        pasted = text.strip().strip('"\'').strip()  # Windows' "Copy as path" quotes it; a paste may end in a newline
        if not os.path.lexists(path) and pasted and pasted != text:
            path = Path(pasted).expanduser()
        problem = input_problem(path)
        if problem is not None:
            raise SourceError(f"{path} {problem}")
        if path.stat().st_size == 0:
            raise SourceError(f"{path} is empty (0 bytes): check that it is the right file and export it again")
        report.kind = _kind(path)
        store = parse_cache(cache)
        key = store.key(path, report.kind, ptype) if store is not None else ""
        hit = store.get(key) if store is not None else None
        if hit is not None:
            # The key is the content: the entry may come from a copy of this file under another name, and its
            # files and errors must name the file given now, not that one.
            def here(name: str | None) -> str | None:
                old = hit.source
                return str(path) + name[len(old):] if old and name and name.startswith(old) else name
            report.files = [here(f) or f for f in hit.files]
            report.notes = [*hit.notes, f"read from the parse cache ({store.folder})"]
            for err in hit.errors:
                bad(RecordError(err.reason, file=here(err.file), record=err.record, field=err.field, line=err.line)
                    if hit.source and hit.source != str(path) else err)
            frame = hit.frame
        else:
            seen: list[RecordError] = []

            def kept(err: RecordError) -> None:
                seen.append(err)
                bad(err)
            if report.kind == "csv":
                report.files = [str(path)]
                frame = _csv_frame(path, report, kept)
            else:
                tasks = _tasks(path, report.kind, workers)
                report.files = list(dict.fromkeys(name for t in tasks for name in t.names))
                frame = _run(tasks, ptype, report, kept, progress=progress, workers=workers, label=label or path.name)
            if store is not None:
                store.put(key, frame, files=report.files, notes=report.notes, errors=seen, source=str(path))
    if not len(frame) and report.kind in ("xml", "zip", "jsonl", "csv"):
        # A file that yields nobody is a broken export, never a true "no users": an empty SIS extract would
        # make every SIS-managed record look stale, an empty users file a report with nothing to find.
        first = f" (the first: {report.errors[0]})" if report.errors else ""
        raise SourceError(f"{report.files[0] if len(report.files) == 1 else text} holds no "
                          f"{'SIS' if label == 'SIS extract' else 'user'} records"
                          + (f": all {report.skipped:,} were bad{first}" if report.skipped else "")
                          + "; check that it is the right file and export it again")
    report.records, report.seconds = len(frame), time.monotonic() - started
    if report.skipped:
        log.warning("%s", report.summary())
    frame.attrs["load_report"] = report.to_dict()
    return frame


def load_users(src: str | os.PathLike[str], *, on_error: OnError = None, progress: bool = False,
               client: AlmaClient | None = None, policy: Policy | None = None,
               workers: int | None = None, cache: bool = True) -> pd.DataFrame:
    """Load Alma users into the patron table.

    Args:
        src: A path to an Alma user ``.xml``, a ``.zip`` of them, ``.jsonl`` or ``.csv`` (the kind is
            told by the suffix, else by the first bytes), ``"api:"`` to read every user live, or
            ``"analytics:PATH"`` for an Analytics users report.
        on_error: What to do with bad records: None or ``"skip"`` skips them (they are logged and kept
            in the report), ``"raise"`` raises :class:`SourceError` naming the first, a function is
            called with each :class:`~almatools.models.RecordError` kept in the report.
        progress: Show a progress bar.
        client: The client for ``"api:"`` and ``"analytics:"`` (default :func:`almatools.connect`).
        policy: The policy (its patron-type statistic category type).
        workers: Processes for a zip, a large XML or JSON lines file (default: the CPUs, at most 8).
        cache: Read an unchanged file's table from the parse cache, and keep a parsed file's there
            (:mod:`almatools.sources.cache`; ``ALMATOOLS_CACHE=off`` turns it off everywhere).

    Returns:
        One row per user with the columns of :data:`~almatools.quality.frame.USER_COLUMNS`; the
        :class:`LoadReport` is in ``attrs["load_report"]``.

    Raises:
        SourceError: The source is missing or cannot be read as a whole (not XML, not a zip, XML
            that stops being well formed, a CSV without ``primary_id``).
    """
    return _load(src, on_error=on_error, progress=progress, client=client, policy=policy, workers=workers,
                 label="users", cache=cache)


def load_sis(src: str | os.PathLike[str], *, on_error: OnError = None, progress: bool = False,
             policy: Policy | None = None, workers: int | None = None, cache: bool = True) -> pd.DataFrame:
    """Load a SIS extract (usually the zip of Alma user XML the SIS sends) into the patron table.

    Same arguments, result and errors as :func:`load_users` (there is no live source of SIS extracts).
    """
    if os.fspath(src).strip().lower() == "api:":
        raise SourceError("a SIS extract is a file (the zip your SIS sends to Alma), not 'api:'")
    return _load(src, on_error=on_error, progress=progress, client=None, policy=policy, workers=workers,
                 label="SIS extract", cache=cache)


@dataclass
class LoadedSources:
    """The users and the SIS extract of one analysis, and where they came from.

    Attributes:
        users: The patron table of the users.
        sis: The patron table of the SIS extract, or None (the SIS rules are then not checked).
        users_source: The users source actually read (the sandbox's export when none was given).
        sis_source: The SIS extract actually read ("" when there is none).
    """

    users: pd.DataFrame
    sis: pd.DataFrame | None
    users_source: str
    sis_source: str

    def summary(self) -> str:
        """One line per table: records read and skipped (:meth:`LoadReport.summary`)."""
        return "\n".join(load_report(f).summary() for f in (self.users, self.sis) if f is not None)


@contextmanager
def _no_step(name: str, source: Any = None) -> Iterator[None]:
    yield


def load_sources(users_source: str | os.PathLike[str] = "", sis_source: str | os.PathLike[str] = "", *,
                 policy: Policy | None = None, client: AlmaClient | None = None, on_error: OnError = None,
                 progress: bool = False,
                 step: Callable[[str, Any], AbstractContextManager[Any]] | None = None,
                 cache: bool = True) -> LoadedSources:
    """Load the users and the SIS extract of an analysis: the one way notebooks and commands do it.

    Args:
        users_source: Any user source (:func:`load_users`), ``"api:"``, or empty for the sandbox's own
            users (exported from its store, :func:`sandbox_files`).
        sis_source: The SIS extract; empty: the sandbox's own when the users are the sandbox's, else none;
            ``"none"``: none.
        policy: The policy (identifier types, SIS groups).
        client: The Alma client, for ``"api:"`` and for finding the sandbox's data.
        on_error: What to do with a bad record (:func:`load_users`).
        progress: Show progress bars.
        step: A context manager factory ``step(name, source)`` wrapped around each step, e.g.
            :func:`almatools.reports.step`, which names the step in any error.
        cache: Use the parse cache for files (:func:`load_users`).

    Raises:
        SourceError: A source cannot be read.
    """
    from almatools.sandbox.files import sandbox_files  # the sandbox's own data: only when no users source is given

    step = step or _no_step
    users_src = str(users_source or "").strip()
    sis_src = str(sis_source or "").strip()
    if not users_src:
        with step("finding the sandbox's data", "the local sandbox"):
            users_src, sandbox_sis = sandbox_files(client)
            sis_src = sis_src or sandbox_sis or ""
    if sis_src.lower() == "none":
        sis_src = ""
    with step("loading the users source", users_src):
        users = load_users(users_src, client=client, policy=policy, progress=progress, on_error=on_error, cache=cache)
    with step("loading the SIS extract", sis_src):
        sis = load_sis(sis_src, policy=policy, progress=progress, on_error=on_error, cache=cache) if sis_src else None
    return LoadedSources(users, sis, users_src, sis_src)
