"""Writing files safely: atomic writes (a crash never leaves half a file), and cells no spreadsheet runs.

Every CSV cell meant for people goes through :func:`safe_cell` (OWASP's advice against CSV injection:
a leading ``'`` before ``=``, ``+``, ``-``, ``@``, tab and carriage return), every worksheet through
:func:`text_cells`; the kit's readers undo the escaping with :func:`unsafe_cell` / :func:`unsafe_frame`.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from almatools.errors import JournalError, SourceError

__all__ = ["AppendLog", "atomic_path", "atomic_write", "fsync_dir", "safe_cell", "safe_frame", "text_cells",
           "unsafe_cell", "unsafe_frame", "write_csv", "csv_records", "CSV_MAX_FIELD_CHARS", "CSV_MAX_LINE_CHARS",
           "input_problem", "csv_hint", "first_non_utf8_line", "csv_column_names"]

log = logging.getLogger(__name__)


def input_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be read as an input file (words to put after its name), or None when it can.

    A named pipe would block a reader forever and a device such as ``/dev/zero`` never ends (a symlink
    to one looks like any file name), so every reader of the kit refuses anything but a regular file
    before it opens it.
    """
    try:
        mode = os.stat(path).st_mode  # follows symlinks: a link to a regular file is fine
    except FileNotFoundError:
        return "does not exist"
    except NotADirectoryError:
        return "does not exist (a part of its path is a file, not a folder)"
    except PermissionError:
        return "cannot be read: permission denied"
    except OSError as err:
        return f"cannot be read: {err.strerror or err.__class__.__name__}"
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (it is a device, a named pipe or a socket); give the file itself"
    return None


_WORKBOOK = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # .xlsx (a zip) and the old .xls (OLE2)


def csv_hint(path: str | os.PathLike[str], header: list[str] | None = None) -> str:
    """What to do about a file that was given as CSV and does not read as one (words to add to a message):
    an Excel workbook, a CSV that is not UTF-8, or one separated by semicolons (as Excel writes it where
    the comma is the decimal mark). Empty when none of these is recognised."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        head = b""
    if head.startswith(_WORKBOOK):
        return ("it is an Excel workbook, not a CSV file: save it from Excel as 'CSV UTF-8 (Comma delimited)'")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "it is UTF-16 text (Excel's 'Unicode Text'): save it as 'CSV UTF-8 (Comma delimited)'"
    if header is not None and len(header) == 1 and ";" in header[0]:
        return ("it looks separated by semicolons, not commas: save it from your spreadsheet as "
                "'CSV UTF-8 (Comma delimited)'")
    return ""


def csv_column_names(path: str | os.PathLike[str], columns: list[str], known: Iterable[str]) -> dict[str, str]:
    """The header names of a CSV to read under the kit's names: ``Primary ID`` or ``PRIMARY_ID`` as
    ``primary_id`` (spreadsheets and people retype headers); only names that become one of ``known`` are
    renamed.

    Raises:
        SourceError: two columns read as one name (``primary_id`` and ``Primary ID``).
    """
    wanted = set(known)
    rename = {c: "_".join(c.lower().split()) for c in columns
              if c not in wanted and "_".join(c.lower().split()) in wanted}
    named = [rename.get(c, c) for c in columns]
    twice = next((c for i, c in enumerate(named) if c and c in named[:i]), None)
    if twice is not None:
        raise SourceError(f"{path}: two columns both read as {twice!r} "
                          f"({', '.join(repr(c) for c in columns if rename.get(c, c) == twice)}): keep one")
    return rename


def first_non_utf8_line(path: str | os.PathLike[str]) -> int | None:
    """The number (from 1) of the first line of ``path`` holding bytes that are not UTF-8, read in bounded
    pieces; None when every byte is UTF-8 (or the file cannot be read). A text reader's own error only
    says where in its current block of 8 KiB it stopped, which is no help in a spreadsheet."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    try:
        with open(path, "rb") as fh:
            while piece := fh.read(1 << 20):
                try:
                    decoder.decode(piece)
                except UnicodeDecodeError as err:  # err.object: the piece, after any bytes held over from the
                    return line + err.object[:err.start].count(b"\n")  # last (never a newline: ASCII is whole)
                line += piece.count(b"\n")
    except OSError:
        return None
    return None


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block ends without error,
    removed when it raises. For writers that want a path (``DataFrame.to_csv``, ``zipfile.ZipFile``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` completely or not at all: a temporary file beside it, fsync, rename, fsync the folder."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


class AppendLog:
    """An append-only journal of JSON objects, one per line, each write flushed and fsynced.

    Every append-only file of the kit is one of these: bulk registration's journal, the merge review's
    decisions, the API snapshot, the report history and the duplicate-pair decisions.

    The one torn-tail policy of the kit: a write is one ``write()`` of a whole line, so a machine that
    dies in the middle of it leaves at most the last line without its newline. That tail is kept when it
    is a whole JSON object (only the newline was lost) and dropped otherwise; :meth:`repair` (called
    before every append) ends it or cuts it off, so the file stays one object per line. Any other line
    that is not a JSON object is damage, not a crash: reading raises :class:`~almatools.errors.JournalError`
    naming the file and the line, and nothing is cut.

    Args:
        path: The journal file (created on the first append).
        sort_keys: Write each object's keys sorted (stable, diffable lines).
        max_line_bytes: Refuse (as damage) a line longer than this while reading, so a damaged file
            cannot fill memory; None for no limit.
    """

    def __init__(self, path: str | os.PathLike[str], *, sort_keys: bool = True,
                 max_line_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.sort_keys = sort_keys
        self.max_line_bytes = max_line_bytes
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AppendLog({str(self.path)!r})"

    def _damaged(self, number: int, why: str) -> JournalError:
        return JournalError(f"{self.path}: line {number} {why}; the entries after it cannot be trusted. "
                            "Restore the file from a backup, or fix or remove that line.",
                            path=self.path, line=number)

    def _refuse_special(self) -> None:
        """A journal that exists but is not a regular file (a folder, a named pipe, a link to a device)
        would block, never end, or fail obscurely: refuse it by name."""
        if os.path.exists(self.path) and not os.path.isfile(self.path):
            raise JournalError(f"{self.path} {input_problem(self.path)} (this name is the kit's journal file: "
                               "move what is there away)", path=self.path)

    @staticmethod
    def _torn(raw: bytes) -> bool:
        """Whether ``raw`` can be the start of one of the kit's lines cut short: every line is written in
        one write() and starts with "{", so a torn one does too (or is only white space)."""
        head = raw.lstrip(b"\xef\xbb\xbf \t\r\n")
        return not head or head.startswith(b"{")

    @staticmethod
    def _parse(raw: bytes) -> dict | None:
        try:
            entry = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: a hand-made line nested too deep
            return None
        return entry if isinstance(entry, dict) else None

    def numbered(self) -> Iterator[tuple[int, dict]]:
        """(line number from 1, entry) for every complete entry, in the order written, streamed.

        Raises:
            JournalError: a line other than a torn last one is not a JSON object (or is over the limit).
        """
        cap = self.max_line_bytes
        self._refuse_special()
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return
        with handle:
            number = 0
            while line := (handle.readline(cap + 1) if cap else handle.readline()):
                number += 1
                if cap and len(line) > cap and not line.endswith(b"\n"):
                    raise self._damaged(number, f"is longer than {cap:,} bytes")
                if not line.endswith(b"\n"):  # the tail: a torn write, or a whole entry that lost its newline
                    entry = self._parse(line)
                    if entry is not None:
                        yield number, entry
                    elif not self._torn(line):
                        raise JournalError(f"{self.path}: line {number} is not a JSON object (nor the start of one cut "
                                           "short): this is not one of the kit's journals, or it was edited; choose "
                                           "another file name, or move this file away", path=self.path, line=number)
                    return
                if not line.strip():
                    continue
                entry = self._parse(line)
                if entry is None:
                    raise self._damaged(number, "is not a JSON object")
                yield number, entry

    def read(self) -> list[dict]:
        """Every complete entry, in the order written ([] when the file does not exist)."""
        return [entry for _, entry in self.numbered()]

    def __iter__(self) -> Iterator[dict]:
        return (entry for _, entry in self.numbered())

    def repair(self) -> bool:
        """End the file at a line boundary: a whole last entry gets its newline, a torn one is cut off.

        Returns:
            True when the file was changed.
        """
        self._refuse_special()
        try:
            handle = open(self.path, "rb+")
        except FileNotFoundError:
            return False
        with handle:
            size = handle.seek(0, os.SEEK_END)
            if not size:
                return False
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return False
            # Find the start of the last line, reading backwards in blocks (the file may be large).
            start, block = size, 1 << 16
            while start > 0:
                step = min(block, start)
                handle.seek(start - step)
                chunk = handle.read(step)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    start = start - step + cut + 1
                    break
                start -= step
            handle.seek(start)
            tail = handle.read()
            if tail.strip() and self._parse(tail) is None and not self._torn(tail):
                # Not the kit's torn write (which starts with "{"): some other file under this name, e.g.
                # a one-line JSON array export. Cutting it would destroy it.
                raise JournalError(f"{self.path}: its last line is not a JSON object (nor the start of one cut "
                                   "short): this is not one of the kit's journals; choose another file name, or "
                                   "move this file away", path=self.path)
            if self._parse(tail) is not None:
                handle.seek(0, os.SEEK_END)
                handle.write(b"\n")
            else:
                if tail.strip():
                    log.warning("%s: dropping an incomplete last line (a write was cut short)", self.path)
                handle.truncate(start)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def _encode(self, entry: dict, compact: bool = False) -> bytes:
        separators = (",", ":") if compact else None
        return json.dumps(entry, ensure_ascii=False, sort_keys=self.sort_keys,
                          separators=separators).encode("utf-8") + b"\n"

    def extend(self, entries: Iterable[dict]) -> None:
        """Add several entries durably, in one write and one fsync (after :meth:`repair`)."""
        data = b"".join(self._encode(e) for e in entries)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.repair()
            with open(self.path, "ab") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())

    def append(self, entry: dict) -> None:
        """Add one entry durably (a torn last line from a crash is cut off first)."""
        self.extend([entry])

    @contextmanager
    def writer(self, *, flush_every: int = 500) -> Iterator[Callable[[dict], None]]:
        """A ``write(entry)`` function for many entries in a row (a snapshot of every user).

        The file is repaired first; entries are flushed every ``flush_every`` and fsynced when the block
        ends (also on error), so a crash loses at most the entries since the last flush, never a line
        in the middle.
        """
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.repair()
            with open(self.path, "ab") as handle:
                count = 0

                def write(entry: dict) -> None:
                    nonlocal count
                    handle.write(self._encode(entry, compact=True))
                    count += 1
                    if count % flush_every == 0:
                        handle.flush()

                try:
                    yield write
                finally:
                    handle.flush()
                    os.fsync(handle.fileno())


# ---------------------------------------------------------------------------------------------
# Cells that a spreadsheet must never take for a formula

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED = re.compile(r"'+[=+\-@\t\r]")


def safe_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula (OWASP's CSV-injection advice).

    Text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``
    (Excel, LibreOffice and Google Sheets show the rest as text). Text that already starts with quotes
    followed by one of those gets one more, so :func:`unsafe_cell` gives back exactly the original.
    Anything that is not text (numbers, None) is returned unchanged.
    """
    if isinstance(value, str) and value and (value.startswith(_FORMULA_START) or _ESCAPED.match(value)):
        return "'" + value
    return value


def unsafe_cell(value: Any) -> Any:
    """Undo :func:`safe_cell` (the kit's readers call this on the CSV files the kit wrote)."""
    if isinstance(value, str) and _ESCAPED.match(value):
        return value[1:]
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (and column names) went through :func:`safe_cell`."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column].dtype):
            out[column] = out[column].map(safe_cell, na_action="ignore")
    out.columns = [safe_cell(c) for c in out.columns]
    return out


def unsafe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`safe_frame` on a table read back from a CSV file the kit wrote (in place; returned)."""
    for column in frame.columns:
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column].dtype):
            frame[column] = frame[column].map(unsafe_cell, na_action="ignore")
    frame.columns = [unsafe_cell(c) for c in frame.columns]
    return frame


def write_csv(frame: pd.DataFrame, path: Path, **kwargs: Any) -> Path:
    """Write a table meant for people as CSV, atomically, every text cell made safe (:func:`safe_cell`)."""
    with atomic_path(Path(path)) as tmp:
        safe_frame(frame).to_csv(tmp, index=False, **kwargs)
    return Path(path)


def text_cells(sheet: Any) -> None:
    """Make every formula cell of an openpyxl worksheet a text cell.

    openpyxl stores any text starting with ``=`` as a formula; the kit writes no formulas, so every such
    cell holds data (a name, a note, a message) and must be shown, never run.
    """
    for row in sheet.iter_rows():
        for cell in row:
            if cell.data_type == "f":
                cell.data_type = "s"


# ---------------------------------------------------------------------------------------------
# Reading CSV files with bounded memory

CSV_MAX_LINE_CHARS = 1 << 20
"""The longest physical line a CSV reader of the kit accepts (1 MiB); a longer one is a bad record."""
CSV_MAX_FIELD_CHARS = 100_000
"""The longest cell a CSV reader of the kit accepts; a longer one is a bad record."""


class _CappedLines:
    """The lines of a text file, each read with a length cap; an overlong one is read past in pieces and
    replaced by an empty line (``overlong`` then holds its line number), so memory stays bounded."""

    def __init__(self, handle: Any, cap: int) -> None:
        self.handle, self.cap, self.line, self.overlong = handle, cap, 0, 0

    def __iter__(self) -> _CappedLines:
        return self

    def __next__(self) -> str:
        line = self.handle.readline(self.cap + 1)
        if not line:
            raise StopIteration
        self.line += 1
        if len(line) > self.cap and not line.endswith(("\n", "\r")):
            while (more := self.handle.readline(1 << 20)) and not more.endswith(("\n", "\r")):
                pass
            self.overlong = self.line
            return "\n"
        return line


def csv_records(path: Path, *, unescape: bool = False) -> Iterator[tuple[int, dict[str, str] | str]]:
    """The records of a CSV file with a header row, streamed: (record number from 1, row) for a good one,
    (record number, what is wrong) for a bad one (a line or cell over the limits, more cells than the
    header has columns). Missing trailing cells are empty. The header comes first as record 0.

    Args:
        path: The file (UTF-8, with or without a byte-order mark).
        unescape: Undo :func:`safe_cell` (for files the kit wrote).

    Raises:
        SourceError: The path is not a regular file (a folder, a named pipe, a link to a device).
        UnicodeDecodeError: The file is not UTF-8 (the caller names the file).
        csv.Error: The header row cannot be read, or names a column twice (the caller names the file).
        OSError: The file cannot be read.
    """
    problem = input_problem(path)
    if problem is not None:
        raise SourceError(f"{path} {problem}")
    # csv's own cell limit (131,072 by default) would stop a cell before ours names it; a cell spanning
    # lines inside quotes still stops at this one. (The limit is process-wide; it is only ever raised.)
    if csv.field_size_limit() < CSV_MAX_LINE_CHARS:
        csv.field_size_limit(CSV_MAX_LINE_CHARS)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        lines = _CappedLines(handle, CSV_MAX_LINE_CHARS)
        # strict: a quoted cell still open at the end of the file is an error, not a cell that silently
        # swallows every later row (and text after a closing quote, '"a"b', is reported, not glued on).
        reader = csv.reader(lines, strict=True)
        header: list[str] | None = None
        n = 0
        while True:
            start = lines.line + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as err:  # a cell over csv's own limit (131,072): the reader goes on after it
                why = (f"a quoted cell that starts on line {start} is never closed (the file ends inside it): add "
                       'the closing "' if str(err) == "unexpected end of data" else
                       f"unreadable CSV ({err}) on line {lines.line}")
                if header is None:
                    raise csv.Error(f"the header row: {why}") from None
                n += 1
                yield n, why
                continue
            if header is None:
                if lines.overlong:
                    raise csv.Error(f"the header line is longer than {CSV_MAX_LINE_CHARS:,} characters")
                header = [c.strip() for c in cells]
                twice = next((c for i, c in enumerate(header) if c and c in header[:i]), None)
                if twice is not None:
                    raise csv.Error(f"the column {twice[:60]!r} appears twice in the header row: keep one of them")
                yield 0, dict(zip(header, header))
                continue
            if not cells and not lines.overlong:
                continue  # a blank line
            n += 1
            if lines.overlong:
                lines.overlong = 0
                yield n, f"line {lines.line} is longer than {CSV_MAX_LINE_CHARS:,} characters, the limit"
                continue
            if len(cells) > len(header):
                yield n, f"{len(cells)} cells, but the header has {len(header)} columns"
                continue
            long = next((i for i, c in enumerate(cells) if len(c) > CSV_MAX_FIELD_CHARS), None)
            if long is not None:
                yield n, (f"column {header[long]!r} holds {len(cells[long]):,} characters, more than the limit "
                          f"of {CSV_MAX_FIELD_CHARS:,}")
                continue
            if unescape:
                cells = [unsafe_cell(c) for c in cells]
            yield n, dict(zip(header, cells + [""] * (len(header) - len(cells))))
