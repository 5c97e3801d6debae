"""Loading patron records and SIS extracts into the patron table, from files or the live API.

A source is any of:

* Alma user XML (``<users><user>…``, as the SIS load and Export Users v2 write) or a single ``<user>``;
* a zip of such files (what the SIS puts on its server, and what Export Users writes);
* JSON lines, one Alma user object (as ``GET /users/{id}`` returns it) per line, e.g. a :func:`snapshot`;
* a CSV whose columns are those of the patron table (:data:`CSV_COLUMNS`; only ``primary_id`` is
  required);
* ``"api:"``: every user, read live through an :class:`~almatools.client.AlmaClient`;
* ``"analytics:PATH"``: an Alma Analytics users report, read by column heading (:data:`ANALYTICS_HEADINGS`).

:func:`load_users` and :func:`load_sis` return the patron table of :mod:`almatools.quality.frame`.
XML is streamed (every element is freed once read, so a file of a million users never becomes one
tree) and read safely: no entities, DTDs or network. The members of a zip (and the parts of a large
JSON lines file) are read in parallel processes.

Errors: a file that cannot be read at all (missing, not XML, not a zip, XML that stops being well
formed) raises :class:`~almatools.errors.SourceError` naming the file and line. A bad record (a date
that is not a date, a list holding the wrong elements, a line that is not JSON, no primary id) is
skipped and reported as a :class:`~almatools.models.RecordError` with file, record number and field,
in the :class:`LoadReport` of the table (:func:`load_report`).

Limits (memory grows with the records kept, never with the file):

* XML: the root must be ``<users>`` or ``<user>`` (checked before the rest is read); every child of
  ``<users>`` is freed once read, ``<user>`` or not; one that grows past :data:`MAX_RECORD_BYTES`
  (16 MiB) stops the file; libxml2's defaults cap a text node at 10,000,000 bytes and nesting at 256.
* Zip: at most :data:`MAX_ZIP_MEMBERS` ``.xml`` members; each worker opens the archive once for a
  batch of members (its directory is not re-read per member).
* JSON lines: a line of more than :data:`MAX_RECORD_BYTES` is read past in pieces and reported; JSON
  nested deeper than Python's parser takes is reported; a number, list or object where Alma sends text
  (names, dates, ``primary_id``, a code's ``value``, an email address…) is reported, never turned into
  text; a missing or null ``primary_id`` is reported.
* CSV: streamed; a line over 1 MiB or a cell over :data:`MAX_FIELD_CHARS` characters, or more cells than
  the header has columns, is a reported record (:func:`almatools.files.csv_records`).

Reading a zip in parallel starts worker processes; as with any use of :mod:`multiprocessing`, a
script that does so keeps its top-level code under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import multiprocessing
import os
import re
import sys
import time
import zipfile
from contextlib import AbstractContextManager, contextmanager
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import pandas as pd
from lxml import etree

from almatools.errors import AlmaError, ConfigError, JournalError, SourceError
from almatools.files import AppendLog, atomic_path, csv_records
from almatools.models import NotAUserFile, RecordError, user_from_xml, user_to_xml_bytes, write_users_xml
from almatools.quality.frame import (USER_COLUMNS, _date, _text, address_entry, digits, joined, normalise_identifier,
                                     rows_frame, user_row)

if TYPE_CHECKING:
    from almatools.client import AlmaClient
    from almatools.policy import Policy

__all__ = ["CSV_COLUMNS", "LoadReport", "LoadedSources", "SnapshotResult", "element_row", "load_report", "load_sis",
           "load_sources", "load_users", "sandbox_files", "snapshot"]

log = logging.getLogger(__name__)

OnError = Callable[[RecordError], None] | Literal["raise", "skip"] | None
CSV_COLUMNS = tuple(c for c in USER_COLUMNS if c not in ("bad_dates", "identifier_values"))
"""Columns a users CSV may have (the patron table's; ``primary_id`` is the only one required). Missing
ones are derived or left empty: ``email`` is the first of ``emails``, ``email_count`` and
``preferred_emails`` are counted from them, ``staff_role`` comes from ``roles``."""
_KEPT_ERRORS = 100  # errors kept in a report (all are counted, and all go to on_error)
_PARALLEL_BYTES = 48 << 20  # below this much (uncompressed) input, one process reads it all
_JSONL_PART = 64 << 20
MAX_RECORD_BYTES = 16 << 20
"""The most one record may take: one ``<user>`` element of XML, one line of JSON lines, one line of CSV."""
MAX_FIELD_CHARS = 100_000
"""The most characters one field (a CSV cell, a JSON text value) may hold; a longer one makes its record bad."""
MAX_ZIP_MEMBERS = 100_000
"""The most ``.xml`` files a zip may hold."""


# ---------------------------------------------------------------------------------------------
# The report


@dataclass
class LoadReport:
    """What a load read and what it skipped.

    Attributes:
        source: The source as given.
        kind: ``xml``, ``zip``, ``jsonl``, ``csv`` or ``api``.
        files: The files (zip members as ``archive.zip:member.xml``) read.
        records: Records read into the table.
        skipped: Bad records skipped.
        errors: The first 100 skipped records' errors (file, record, field, reason); ``on_error``
            sees them all.
        seconds: How long the load took.
        notes: Anything else worth saying (ignored CSV columns, API calls…).
    """

    source: str
    kind: str
    files: list[str] = field(default_factory=list)
    records: int = 0
    skipped: int = 0
    errors: list[RecordError] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def add_error(self, err: RecordError) -> None:
        """Count a skipped record and keep its error (the first 100)."""
        self.skipped += 1
        if len(self.errors) < _KEPT_ERRORS:
            self.errors.append(err)

    def errors_frame(self) -> pd.DataFrame:
        """The kept errors as a table: file, record, line, field, reason."""
        return pd.DataFrame([(e.file, e.record, e.line, e.field, e.reason) for e in self.errors],
                            columns=["file", "record", "line", "field", "reason"])

    def summary(self) -> str:
        """One line: how many records were read and skipped, from how many files, in how long."""
        text = f"{self.source}: {self.records:,} records from {len(self.files)} file(s) in {self.seconds:.1f} s"
        return text + (f"; {self.skipped:,} bad records skipped" if self.skipped else "")

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (what ``frame.attrs["load_report"]`` holds)."""
        return {"source": self.source, "kind": self.kind, "files": list(self.files), "records": self.records,
                "skipped": self.skipped, "seconds": round(self.seconds, 3), "notes": list(self.notes),
                "errors": [{"file": e.file, "record": e.record, "line": e.line, "field": e.field, "reason": e.reason}
                           for e in self.errors]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadReport:
        """The report from :meth:`to_dict`'s data."""
        errors = [RecordError(e["reason"], file=e["file"], record=e["record"], field=e["field"], line=e["line"])
                  for e in data.get("errors", [])]
        return cls(data["source"], data["kind"], list(data.get("files", [])), data.get("records", 0),
                   data.get("skipped", 0), errors, data.get("seconds", 0.0), list(data.get("notes", [])))


def load_report(frame: pd.DataFrame) -> LoadReport | None:
    """The :class:`LoadReport` of a table made by :func:`load_users` or :func:`load_sis` (None otherwise)."""
    data = frame.attrs.get("load_report")
    return LoadReport.from_dict(data) if isinstance(data, dict) else None


def _error_tuple(err: RecordError) -> tuple[Any, ...]:  # RecordError does not pickle its fields
    return err.reason, err.file, err.record, err.field, err.line


def _error_of(t: tuple[Any, ...]) -> RecordError:
    reason, file, record, fld, line = t
    return RecordError(reason, file=file, record=record, field=fld, line=line)


# ---------------------------------------------------------------------------------------------
# The fast path: one <user> element straight to a row, without the full JSON object

_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_DATE_RE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})?")
_NOT_DIGIT = re.compile(r"[^0-9]")
_DATES: dict[str, str] = {}
_AS_ATTRIBUTE = frozenset({"preferred", "preferred_sms", "segment_type"})


class _Odd(Exception):
    """The fast reader met something unusual; the record goes through the reference reader instead."""


def _leaf(el: Any) -> str:
    if el is None:
        return ""
    if len(el):
        raise _Odd
    return el.text or ""


def _txt(el: Any) -> str:
    if el is None:
        return ""
    if len(el):
        raise _Odd
    t = el.text
    return " ".join(t.split()) if t else ""


def _cde(el: Any) -> str:
    if el is None:
        return ""
    if len(el):
        raise _Odd
    t = el.text
    return t.strip() if t else ""


def _dte(el: Any) -> str:
    t = _leaf(el)
    if not t:
        return ""
    d = _DATES.get(t)
    if d is None:
        m = _DATE_RE.fullmatch(t.strip())
        if not m:
            raise _Odd
        try:
            date.fromisoformat(m.group(1))
        except ValueError:
            raise _Odd from None
        if len(_DATES) > 100_000:
            _DATES.clear()
        d = _DATES[t] = m.group(1)
    return d


def _num(el: Any) -> float:
    if el is None or el.get(_XSI_NIL) in ("true", "1"):
        return 0.0
    t = _leaf(el)
    try:
        return float(t)
    except ValueError:
        raise _Odd from None


def _pref(value: str | None) -> bool:
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    low = value.strip().lower()
    if low not in ("true", "false"):
        raise _Odd
    return low == "true"


def _items(wrapper: Any, tag: str) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The items of a list wrapper, each with its children by tag (a tag seen twice is odd)."""
    for item in wrapper:
        kids = {k.tag: k for k in item}
        if item.tag != tag or not kids or len(kids) != len(item) or not _AS_ATTRIBUTE.isdisjoint(kids):
            raise _Odd
        yield item, kids


def _best(items: list[tuple[bool, Any]]) -> Any:
    for pref, value in items:
        if pref:
            return value
    return items[0][1] if items else None


def _digits(s: str) -> str:
    return _NOT_DIGIT.sub("", s) if s.isascii() else "".join(ch for ch in s if ch.isdigit())


def _fast_row(user: Any, ptype: str) -> tuple[Any, ...]:
    f = {c.tag: c for c in user}
    if len(f) != len(user):  # a field given twice: the reference reader says which
        raise _Odd
    g = f.get
    emails: list[tuple[bool, tuple[str, list[str]]]] = []
    phones: list[tuple[bool, str]] = []
    addresses: list[tuple[bool, tuple[str, str, str]]] = []
    contact = g("contact_info")
    if contact is not None:
        seen: set[str] = set()
        for w in contact:
            t = w.tag
            if t in seen:
                raise _Odd
            seen.add(t)
            if t == "emails":
                for item, k in _items(w, "email"):
                    types = k.get("email_types")
                    codes = [_cde(x) if x.tag == "email_type" else _odd() for x in types] if types is not None else []
                    emails.append((_pref(item.get("preferred")), (_txt(k.get("email_address")).lower(), codes)))
            elif t == "phones":
                phones.extend((_pref(item.get("preferred")), _leaf(k.get("phone_number")))
                              for item, k in _items(w, "phone"))
            elif t == "addresses":
                addresses.extend((_pref(item.get("preferred")),
                                  (_txt(k.get("line1")), _txt(k.get("city")), _txt(k.get("postal_code"))))
                                 for item, k in _items(w, "address"))
            elif t in _AS_ATTRIBUTE:
                raise _Odd
    pid_el = g("primary_id")
    id_values = {"".join(_leaf(pid_el).split()).casefold()}
    identifiers = []
    if (w := g("user_identifiers")) is not None:
        for _item, k in _items(w, "user_identifier"):
            words = _leaf(k.get("value")).split()
            identifiers.append(f"{_cde(k.get('id_type'))}={' '.join(words)}")
            id_values.add("".join(words).casefold())
    id_values.discard("")
    roles = sorted({_cde(k.get("role_type")) for _i, k in _items(w, "user_role")} - {""}) \
        if (w := g("user_roles")) is not None else []
    patron_type, stats = None, set()
    if (w := g("user_statistics")) is not None:
        for _item, k in _items(w, "user_statistic"):
            cat = _cde(k.get("statistic_category"))
            stats.add(cat)
            if patron_type is None and _cde(k.get("category_type")) == ptype:
                patron_type = cat
    best_email = _best(emails)
    best_address = _best(addresses) or ("", "", "")
    return (
        _txt(pid_el), _txt(g("first_name")), _txt(g("middle_name")), _txt(g("last_name")), _cde(g("user_group")),
        _cde(g("account_type")), _txt(g("external_id")), _cde(g("status")), _cde(g("record_type")),
        _dte(g("expiry_date")), _dte(g("purge_date")), _dte(g("birth_date")), "",
        best_email[0] if best_email else "", ";".join(sorted({e[1][0] for e in emails} - {""})),
        ";".join(sorted(set(best_email[1]) - {""})) if best_email else "", len(emails),
        sum(1 for e in emails if e[0]), _digits(_best(phones) or ""), ";".join(sorted(identifiers)),
        ";".join(sorted(id_values)), *best_address, ";".join(roles), any(r != "200" for r in roles), patron_type or "",
        ";".join(sorted(stats - {""})), _num(g("loans")), _num(g("requests")), _num(g("fees")),
        _txt(g("pref_first_name")), joined(_digits(p) for _pref_, p in phones),
        joined(address_entry(a[0], a[2]) for _pref_, a in addresses),
    )


def _odd() -> str:
    raise _Odd


def element_row(user: etree._Element, patron_type_category_type: str = "PATRON_TYPE") -> tuple[Any, ...]:
    """One ``<user>`` element as a row of the patron table (a tuple in ``USER_COLUMNS`` order).

    The same row as ``user_row(user_from_xml(user))``, several times faster: the fields the table
    needs are read straight from the element. Anything unusual in them (a date that is not a date,
    a field given twice, a list holding other elements, a nil list item) sends the record through
    that reference path, which then reports the problem exactly. Fields the table does not read
    (notes, blocks, role parameters…) are not checked.

    Raises:
        RecordError: The record cannot be read; ``field`` names the place.
    """
    try:
        return _fast_row(user, patron_type_category_type)
    except _Odd:
        row = user_row(user_from_xml(user), patron_type_category_type=patron_type_category_type)
        return tuple(row[c] for c in USER_COLUMNS)


# ---------------------------------------------------------------------------------------------
# Streaming XML with bounded memory

_XML_CHUNK = 1 << 16


def _xml_parser(**kwargs: Any) -> Any:
    # No entities, no DTD, no network; huge_tree=False keeps libxml2's own limits: a text node of at
    # most 10,000,000 bytes and elements nested at most 256 deep.
    return etree.XMLPullParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                               remove_comments=True, remove_pis=True, **kwargs)


def _user_elements(src: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """The ``<user>`` records of an Alma user XML stream, as (record number from 1, element).

    Memory stays bounded by one record, whatever the file holds: the root is checked as soon as it
    starts (a file whose root is not ``<users>`` or ``<user>`` stops there, before the rest is read),
    every child of ``<users>`` (``<user>`` or anything else) is dropped once complete, and one that
    grows past :data:`MAX_RECORD_BYTES` stops the file.

    Raises:
        lxml.etree.XMLSyntaxError: The XML is not well formed (raised where it stops being so).
        NotAUserFile: The root is not ``<users>`` or ``<user>``, or a record is too large.
    """
    parser = _xml_parser(events=("start", "end"), tag=("users", "user"))
    probe: Any = _xml_parser(events=("start",))
    root: Any = None
    n = fed = 0
    last: Any = None
    last_seen = 0
    while True:
        chunk = src.read(_XML_CHUNK)
        if probe is not None and chunk:
            probe.feed(chunk)
            for _event, el in probe.read_events():
                if el.tag not in ("users", "user"):
                    raise NotAUserFile(f"is not an Alma user file: the root element is <{el.tag}>, expected <users> "
                                       "(holding <user> elements)")
                probe = None
                break
        if chunk:
            parser.feed(chunk)
            fed += len(chunk)
        else:
            parser.close()  # raises XMLSyntaxError when the document is incomplete or empty
        for event, el in parser.read_events():
            if event == "start":
                if root is None:
                    root = el
                continue
            if el.tag == "user" and (el is root or (el.getparent() is root and root.tag == "users")):
                n += 1
                try:
                    yield n, el
                finally:
                    el.clear(keep_tail=False)
        if not chunk:
            return
        if root is None:
            continue
        # Drop the complete children of <users> (records and anything else); the last may still grow.
        if root.tag == "users" and len(root) > 1:
            del root[:-1]
        current = root[-1] if root.tag == "users" and len(root) else root
        if current is not last:
            last, last_seen = current, fed
        elif fed - last_seen > MAX_RECORD_BYTES:
            what = "record" if current.tag == "user" else f"<{current.tag}> element"
            raise NotAUserFile(f"holds a {what} (from line {current.sourceline}) larger than "
                               f"{MAX_RECORD_BYTES >> 20} MiB, the limit for one user record")


# ---------------------------------------------------------------------------------------------
# Readers: each returns (rows, error tuples, records seen); a file that cannot be read raises SourceError


def _xml_rows(src: IO[bytes], name: str, ptype: str, tick: Callable[[int], None] | None = None
              ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    rows: list[tuple[Any, ...]] = []
    errors: list[tuple[Any, ...]] = []
    n = 0
    try:
        for n, el in _user_elements(src):
            try:
                row = element_row(el, ptype)
                if not row[0]:  # Alma has no user without a primary id: an empty one would match nothing
                    raise RecordError("no primary id", field="primary_id")
                rows.append(row)
            except RecordError as err:
                errors.append(_error_tuple(err.located(file=name, record=n, line=el.sourceline)))
            if tick is not None and n % 5000 == 0:
                tick(src.tell())
    except etree.XMLSyntaxError as err:
        what = "is not XML" if n == 0 else f"stops being well-formed XML after {n:,} complete records"
        raise SourceError(f"{name} {what} (line {err.lineno}: {' '.join(str(err.msg).split())})") from None
    except OSError as err:
        raise SourceError(f"{name} cannot be read: {err}") from None
    except NotAUserFile as err:
        raise SourceError(f"{name} {err}") from None
    return rows, errors, n


_TEXT_FIELDS = ("primary_id", "first_name", "middle_name", "last_name", "full_name", "external_id",
                "job_description", "birth_date", "expiry_date", "purge_date", "pin_number")
_CODE_FIELDS = ("user_group", "account_type", "status", "record_type", "preferred_language", "gender",
                "campus_code", "cataloger_level", "job_category", "user_title")
_LISTS = {"email": ("email_address",), "phone": ("phone_number",),
          "address": ("line1", "line2", "line3", "city", "postal_code", "state_province")}


def _check_text(value: Any, where: str) -> None:
    if value is None or isinstance(value, str):
        if value is not None and len(value) > MAX_FIELD_CHARS:
            raise RecordError(f"{len(value):,} characters, more than the limit of {MAX_FIELD_CHARS:,}", field=where)
        return
    kind = {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)
    raise RecordError(f"expected text, found {kind}", field=where)


def _check_user(user: dict[str, Any]) -> None:
    """Refuse what Alma never sends in a user object: a missing primary id, or a list, an object or a
    number where text belongs (they would otherwise become text such as ``['x']`` or ``inf``)."""
    pid = user.get("primary_id")
    if not isinstance(pid, str) or not pid.strip():
        raise RecordError("no primary id" if pid is None or pid == "" else
                          f"the primary id must be text, found {type(pid).__name__}", field="primary_id")
    for name in _TEXT_FIELDS:
        _check_text(user.get(name), name)
    for name in _CODE_FIELDS:
        value = user.get(name)
        if isinstance(value, dict):
            _check_text(value.get("value"), f"{name}/value")
        elif value is not None:
            _check_text(value, name)
    for name in ("user_identifier", "user_role", "user_statistic"):
        items = user.get(name)
        if items is not None and not isinstance(items, list | dict):
            raise RecordError("expected a list", field=name)
    contact = user.get("contact_info")
    if contact is None:
        return
    if not isinstance(contact, dict):
        raise RecordError("expected an object", field="contact_info")
    for kind, keys in _LISTS.items():
        items = contact.get(kind)
        if items is None:
            continue
        items = [items] if isinstance(items, dict) else items
        if not isinstance(items, list):
            raise RecordError("expected a list", field=f"contact_info/{kind}")
        for k, item in enumerate(items, 1):
            if isinstance(item, dict):
                for key in keys:
                    _check_text(item.get(key), f"contact_info/{kind}[{k}]/{key}")


def _json_row(line: bytes, ptype: str) -> tuple[Any, ...]:
    try:
        user = json.loads(line)
    except ValueError as err:
        raise RecordError(f"not JSON ({err})") from None
    except RecursionError:  # the C parser stops at Python's recursion limit: report, never crash
        raise RecordError("JSON nested too deeply to be an Alma user") from None
    if not isinstance(user, dict):
        raise RecordError(f"expected an Alma user object, found {type(user).__name__}")
    _check_user(user)
    try:
        row = user_row(user, patron_type_category_type=ptype)
    except (AttributeError, TypeError, ValueError, RecursionError) as err:
        raise RecordError(f"not an Alma user object ({err.__class__.__name__})") from None
    return tuple(row[c] for c in USER_COLUMNS)


def _capped_lines(fh: IO[bytes], start: int, end: int | None) -> Iterator[tuple[int, bytes | None]]:
    """The lines that start in ``[start, end)``, as (bytes consumed, line); a line longer than
    :data:`MAX_RECORD_BYTES` is read past in chunks and given as None (memory stays bounded)."""
    fh.seek(start)
    pos = start
    while end is None or pos < end:
        line = fh.readline(MAX_RECORD_BYTES + 1)
        if not line:
            return
        used = len(line)
        if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
            while True:  # skip the rest of the overlong line
                more = fh.readline(1 << 20)
                used += len(more)
                if not more or more.endswith(b"\n"):
                    break
            yield used, None
        else:
            yield used, line
        pos += used


def _jsonl_rows(path: str, name: str, ptype: str, start: int = 0, end: int | None = None,
                tick: Callable[[int], None] | None = None) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """Rows of the lines that start in ``[start, end)``; record numbers are lines counted from ``start``."""
    rows: list[tuple[Any, ...]] = []
    errors: list[tuple[Any, ...]] = []
    n = 0
    try:
        with open(path, "rb") as fh:
            pos = start
            for used, line in _capped_lines(fh, start, end):
                pos += used
                n += 1
                if line is None:
                    errors.append(_error_tuple(RecordError(
                        f"the line is longer than {MAX_RECORD_BYTES >> 20} MiB, the limit for one record",
                        file=name, record=n, line=n)))
                    continue
                if not line.strip():
                    continue
                try:
                    rows.append(_json_row(line, ptype))
                except RecordError as err:
                    errors.append(_error_tuple(err.located(file=name, record=n, line=n)))
                if tick is not None and n % 5000 == 0:
                    tick(pos - start)
    except OSError as err:
        raise SourceError(f"{name} cannot be read: {err}") from None
    return rows, errors, n


@dataclass(frozen=True)
class _Task:
    kind: str  # xml | zip | jsonl
    path: str
    members: tuple[str, ...] = ()  # zip members read by this task (the zip is opened once for them all)
    start: int = 0
    end: int | None = None
    size: int = 0  # bytes, for the progress bar

    @property
    def names(self) -> list[str]:
        return [f"{self.path}:{m}" for m in self.members] if self.members else [self.path]


def _run_task(task: _Task, ptype: str, tick: Callable[[int], None] | None = None
              ) -> tuple[pd.DataFrame, list[tuple[Any, ...]], int]:
    """Read one file, some zip members or part of a JSON lines file into a table (runs in a worker process)."""
    if task.kind == "jsonl":
        rows, errors, n = _jsonl_rows(task.path, task.path, ptype, task.start, task.end, tick)
    elif task.kind == "zip":
        rows, errors, n = [], [], 0
        done = 0
        member = ""
        try:
            with zipfile.ZipFile(task.path) as zf:  # opened once: its directory is read once per task
                for member in task.members:
                    with zf.open(member) as fh:
                        inner = (lambda pos, done=done: tick(done + pos)) if tick is not None else None
                        r, e, k = _xml_rows(fh, f"{task.path}:{member}", ptype, inner)
                    rows.extend(r)
                    errors.extend(e)
                    n += k
                    done += zf.getinfo(member).file_size
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError) as err:
            raise SourceError(f"{task.path}:{member} cannot be read from the zip: {err}") from None
        except OSError as err:
            raise SourceError(f"{task.path} cannot be read: {err}") from None
    else:
        try:
            with open(task.path, "rb") as fh:
                rows, errors, n = _xml_rows(fh, task.path, ptype, tick)
        except OSError as err:
            raise SourceError(f"{task.path} cannot be read: {err}") from None
    return rows_frame(rows), errors, n


def _workers(requested: int | None) -> int:
    if requested:
        return max(1, requested)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, 8))


def _pool(workers: int) -> ProcessPoolExecutor:
    # forkserver: workers do not inherit this process's threads (the sandbox, Jupyter), which fork would.
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["almatools.sources"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def _run(tasks: list[_Task], ptype: str, report: LoadReport, bad: Callable[[RecordError], None], *,
         progress: bool, workers: int | None, label: str) -> pd.DataFrame:
    """Run the read tasks (in parallel when worth it) and join their tables in task order."""
    total = sum(t.size for t in tasks)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, desc=label)
    results: dict[int, tuple[pd.DataFrame, list[tuple[Any, ...]], int]] = {}
    n_workers = min(_workers(workers), len(tasks))
    try:
        if n_workers > 1 and total >= _PARALLEL_BYTES:
            with _pool(n_workers) as pool:
                futures: dict[Future, int] = {pool.submit(_run_task, t, ptype): i for i, t in enumerate(tasks)}
                pending = set(futures)
                try:
                    while pending:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            try:
                                results[futures[fut]] = fut.result()
                            except BrokenProcessPool:
                                raise SourceError(f"{tasks[futures[fut]].path}: a reader process died while reading "
                                                  "it (out of memory?)") from None
                            if bar is not None:
                                bar.update(tasks[futures[fut]].size)
                finally:
                    for fut in pending:
                        fut.cancel()
        else:
            for i, t in enumerate(tasks):
                base = bar.n if bar is not None else 0
                tick = (lambda pos, base=base: bar.update(max(0, base + pos - bar.n))) if bar is not None else None
                results[i] = _run_task(t, ptype, tick)
                if tick is not None:
                    tick(t.size)
    finally:
        if bar is not None:
            bar.close()
    frames, line_offset = [], 0
    for i, task in enumerate(tasks):
        frame, errors, n = results[i]
        frames.append(frame)
        for e in errors:
            err = _error_of(e)
            if task.kind == "jsonl":  # number the lines of the whole file, not of this part
                err = RecordError(err.reason, file=task.path, record=err.record + line_offset,
                                  field=err.field, line=err.line + line_offset)
            bad(err)
        line_offset = line_offset + n if task.kind == "jsonl" else 0
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if report.kind == "jsonl" and not len(out) and report.skipped:
        raise SourceError(f"{report.source} is not JSON lines of Alma users: {report.errors[0]}")
    return out


# ---------------------------------------------------------------------------------------------
# CSV


def _csv_frame(path: Path, report: LoadReport, bad: Callable[[RecordError], None]) -> pd.DataFrame:
    """A users CSV, streamed (memory grows with the rows kept, not the file); bad rows are reported."""
    rows = []
    try:
        for n, rec in csv_records(path):
            if n == 0:
                columns = list(rec)
                if "primary_id" not in columns:
                    raise SourceError(f"{path} is not a users CSV: it has no primary_id column (it has "
                                      f"{', '.join(c[:40] for c in columns[:30])})")
                ignored = [c for c in columns if c not in CSV_COLUMNS]
                if ignored:
                    report.notes.append(f"columns ignored: {', '.join(c[:40] for c in ignored[:30])}")
                continue
            if isinstance(rec, str):
                bad(RecordError(rec, file=str(path), record=n))
                continue
            try:
                if not rec.get("primary_id", "").strip():
                    raise RecordError("no primary id", field="primary_id")
                rows.append(_csv_row(rec))
            except RecordError as err:
                bad(err.located(file=str(path), record=n))
    except UnicodeDecodeError as err:
        raise SourceError(f"{path} is not a readable CSV file: it is not UTF-8 text ({err.reason} at byte "
                          f"{err.start} of a block)") from None
    except csv.Error as err:
        raise SourceError(f"{path} is not a readable CSV file: {err}") from None
    return rows_frame(rows)


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(";") if v.strip()]


def _csv_row(rec: dict[str, str]) -> tuple[Any, ...]:
    def get(name: str) -> str:
        return rec.get(name, "") or ""
    out: dict[str, Any] = {c: _text(get(c)) for c in ("primary_id", "first_name", "middle_name", "last_name",
                                                      "external_id", "line1", "city", "postal_code")}
    out.update({c: get(c).strip() for c in ("user_group", "account_type", "status", "record_type", "patron_type")})
    bad = []
    for name in ("expiry_date", "purge_date", "birth_date"):
        out[name], ok = _date(get(name))
        if not ok:
            bad.append(name)
    out["bad_dates"] = ";".join(bad)
    emails = [e.lower() for e in _split(get("emails"))]
    out["email"] = _text(get("email")).lower() or (emails[0] if emails else "")
    out["emails"] = ";".join(sorted(set(emails) | ({out["email"]} - {""})))
    out["email_types"] = ";".join(sorted(set(_split(get("email_types")))))
    out["phone"] = _digits(get("phone"))
    out["pref_first_name"] = _text(get("pref_first_name"))
    out["phones"] = joined([*(digits(p) for p in _split(get("phones"))), out["phone"]])
    entries = [address_entry(*a.partition("|")[::2]) for a in _split(get("addresses"))]
    out["addresses"] = joined([*entries, address_entry(out["line1"], out["postal_code"])])
    idents = _split(get("identifiers"))
    out["identifiers"] = ";".join(sorted(idents))
    values = {normalise_identifier(out["primary_id"])} | {normalise_identifier(i.partition("=")[2]) for i in idents}
    out["identifier_values"] = ";".join(sorted(values - {""}))
    roles = sorted(set(_split(get("roles"))))
    out["roles"] = ";".join(roles)
    flag = get("staff_role").strip().lower()
    out["staff_role"] = flag in ("true", "1", "yes") if flag else any(r != "200" for r in roles)
    out["statistics"] = ";".join(sorted(set(_split(get("statistics")))))
    for name, default in (("email_count", len(out["emails"].split(";")) if out["emails"] else 0),
                          ("preferred_emails", 1 if out["emails"] else 0)):
        value = get(name).strip()
        if value and not value.isdigit():
            raise RecordError(f"not a whole number: {value!r}", field=name)
        out[name] = int(value) if value else default
    for name in ("loans", "requests", "fees"):
        value = get(name).strip()
        try:
            out[name] = float(value) if value else 0.0
        except ValueError:
            raise RecordError(f"not a number: {value!r}", field=name) from None
    return tuple(out[c] for c in USER_COLUMNS)


# ---------------------------------------------------------------------------------------------
# Loading


def _kind(path: Path) -> str:
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
                members = [i for i in zf.infolist() if not i.is_dir() and i.filename.lower().endswith(".xml")]
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise SourceError(f"{path} is not a readable zip file: {err}") from None
        if not members:
            raise SourceError(f"{path} holds no .xml files")
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
    return [_Task(kind, str(path), size=size)]


def _load(src: str | os.PathLike[str], *, on_error: OnError, progress: bool, client: AlmaClient | None,
          policy: Policy | None, workers: int | None, label: str) -> pd.DataFrame:
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
        if not path.is_file():
            raise SourceError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
        report.kind = _kind(path)
        if report.kind == "csv":
            report.files = [str(path)]
            frame = _csv_frame(path, report, bad)
        else:
            tasks = _tasks(path, report.kind, workers)
            report.files = list(dict.fromkeys(name for t in tasks for name in t.names))
            frame = _run(tasks, ptype, report, bad, progress=progress, workers=workers, label=label or path.name)
    report.records, report.seconds = len(frame), time.monotonic() - started
    if report.skipped:
        log.warning("%s", report.summary())
    frame.attrs["load_report"] = report.to_dict()
    return frame


def load_users(src: str | os.PathLike[str], *, on_error: OnError = None, progress: bool = False,
               client: AlmaClient | None = None, policy: Policy | None = None,
               workers: int | None = None) -> pd.DataFrame:
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
        workers: Processes for a zip or a large JSON lines file (default: the CPUs, at most 8).

    Returns:
        One row per user with the columns of :data:`~almatools.quality.frame.USER_COLUMNS`; the
        :class:`LoadReport` is in ``attrs["load_report"]``.

    Raises:
        SourceError: The source is missing or cannot be read as a whole (not XML, not a zip, XML
            that stops being well formed, a CSV without ``primary_id``).
    """
    return _load(src, on_error=on_error, progress=progress, client=client, policy=policy, workers=workers,
                 label="users")


def load_sis(src: str | os.PathLike[str], *, on_error: OnError = None, progress: bool = False,
             policy: Policy | None = None, workers: int | None = None) -> pd.DataFrame:
    """Load a SIS extract (usually the zip of Alma user XML the SIS sends) into the patron table.

    Same arguments, result and errors as :func:`load_users` (there is no live source of SIS extracts).
    """
    if os.fspath(src).strip().lower() == "api:":
        raise SourceError("a SIS extract is a file (the zip your SIS sends to Alma), not 'api:'")
    return _load(src, on_error=on_error, progress=progress, client=None, policy=policy, workers=workers,
                 label="SIS extract")


# ---------------------------------------------------------------------------------------------
# The live API


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


# ---------------------------------------------------------------------------------------------
# The sandbox's own data


def _sandbox_folder(client: AlmaClient | None, data_dir: str | os.PathLike[str] | None) -> Path | None:
    import almatools
    from almatools.sandbox import default_data_dir

    running = getattr(almatools, "_sandbox", None)
    candidates = [Path(data_dir)] if data_dir is not None else []
    if running is not None and getattr(running, "data_dir", None) is not None:
        candidates.append(Path(running.data_dir))
    candidates.append(default_data_dir())
    for folder in candidates:
        if (folder / "sandbox.sqlite").is_file() and (client is None or _same_sandbox(client, folder)):
            return folder
    return None


def _same_sandbox(client: AlmaClient, folder: Path) -> bool:
    """Whether the client talks to the sandbox whose data is in ``folder`` (one user compared)."""
    from almatools.sandbox.store import Store

    with Store(folder / "sandbox.sqlite") as store:
        _, first = store.query(order_by="primary_id", limit=1)
    if not first:
        return False
    theirs = client.find_user(str(first[0]["primary_id"]))
    return theirs is not None and all(theirs.get(k) == first[0].get(k) for k in ("first_name", "last_name"))


def _export_store(db: Path, out: Path, users_per_file: int = 20_000) -> None:
    """Write the users of a sandbox store as Export Users v2 XML files in a zip (replaced atomically)."""
    from almatools.sandbox.store import Store

    with atomic_path(out) as tmp:
        with Store(db) as store, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            total, _ = store.query(order_by="primary_id", limit=0)
            for k, offset in enumerate(range(0, total, users_per_file), 1):
                _, users = store.query(order_by="primary_id", limit=users_per_file, offset=offset)
                with zf.open(f"users_{k:04d}.xml", "w") as fh:
                    write_users_xml(fh, (user_to_xml_bytes(u, xml_declaration=False) for u in users), len(users))


def sandbox_files(client: AlmaClient | None = None, *, data_dir: str | os.PathLike[str] | None = None
                  ) -> tuple[str, str | None]:
    """The users source and SIS extract of the local sandbox, for analysing it without the API.

    The sandbox keeps its users in SQLite next to its SIS extract (``sis_extract.zip``). This writes
    them as an Export Users file (``users_export.zip`` in the same folder, refreshed when the store
    changed since) and returns both paths. When the sandbox's folder is not on this machine (the
    server runs elsewhere), the users come from ``"api:"`` and there is no SIS extract (None).

    Args:
        client: The client of the sandbox (to check the folder holds its data); None trusts the folder.
        data_dir: The sandbox's data folder (default: the sandbox this process started, else
            :func:`almatools.sandbox.default_data_dir`).

    Raises:
        SourceError: ``client`` works on production Alma, which has no sandbox files.
    """
    if client is not None and client.environment != "SANDBOX":
        raise SourceError("This client works on production Alma: give the users source and SIS extract yourself.")
    folder = _sandbox_folder(client, data_dir)
    if folder is None:
        log.info("the sandbox's data folder is not on this machine: users come from the API, no SIS extract")
        return "api:", None
    db, users = folder / "sandbox.sqlite", folder / "users_export.zip"
    changed = max((p.stat().st_mtime for p in (db, folder / "sandbox.sqlite-wal") if p.exists()), default=0.0)
    if not users.exists() or users.stat().st_mtime < changed:
        _export_store(db, users)
    sis = folder / "sis_extract.zip"
    return str(users), str(sis) if sis.exists() else None


# ---------------------------------------------------------------------------------------------
# Loading the two sources of an analysis


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
                 step: Callable[[str, Any], AbstractContextManager[Any]] | None = None) -> LoadedSources:
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

    Raises:
        SourceError: A source cannot be read.
    """
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
        users = load_users(users_src, client=client, policy=policy, progress=progress, on_error=on_error)
    with step("loading the SIS extract", sis_src):
        sis = load_sis(sis_src, policy=policy, progress=progress, on_error=on_error) if sis_src else None
    return LoadedSources(users, sis, users_src, sis_src)
