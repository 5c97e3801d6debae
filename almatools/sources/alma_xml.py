"""Alma user XML: streamed safely, one ``<user>`` at a time, into rows of the patron table."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date
from typing import IO, Any

from lxml import etree

from almatools.errors import SourceError
from almatools.models import NotAUserFile, RecordError, user_from_xml
from almatools.quality.frame import (
    USER_COLUMNS,
    address_entry,
    digits,
    joined,
    user_row,
)
from almatools.sources.base import MAX_RECORD_BYTES, _error_tuple

_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_NIL = ("true", "1")
_DATE_RE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})?")
_DATES: dict[str, str] = {}
# Children that are not fields: attributes some tool wrote as elements, and unresolved entity references
# (the reference reader refuses those). Seen where the fast reader reads an object's children, they are odd.
_NOT_FIELDS = frozenset({"preferred", "preferred_sms", "segment_type", etree.Entity})
# The top-level leaves read, in USER_COLUMNS order, by kind: 1 a text outside the reference reader's schema
# (runs of whitespace made one space; see _generic_nil), 2 a code (only stripped), 3 a date.
_TOP_LEAVES = (("primary_id", 1), ("first_name", 1), ("middle_name", 1), ("last_name", 1), ("user_group", 2),
               ("account_type", 2), ("external_id", 1), ("status", 2), ("record_type", 2), ("expiry_date", 3),
               ("purge_date", 3), ("birth_date", 3))


class _Odd(Exception):
    """The fast reader met something unusual; the record goes through the reference reader instead."""


def _text(el: Any) -> str:
    """The raw text of a leaf field: "" when absent, empty or nil (a nil field is empty whatever it holds,
    as the reference reader has it); a field with child elements is odd."""
    if el is None:
        return ""
    if len(el):
        raise _Odd
    t = el.text
    if not t:
        return ""
    if _XSI_NIL in el.keys() and el.get(_XSI_NIL) in _NIL:  # keys(): a namespaced get() costs more
        return ""
    return t


def _date(t: str) -> str:
    """An Alma date (``2026-06-30Z``, with an offset or none) as ISO; anything else is odd."""
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
    if el is None or (el.keys() and el.get(_XSI_NIL) in _NIL):  # keys(): cheaper than a namespaced get()
        return 0.0
    if len(el):
        raise _Odd
    try:
        return float(el.text or "")  # empty is not a number: the reference reader says so
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


def _list(wrapper: Any) -> Any:
    """A list wrapper's items; a nil wrapper that holds items is odd (the reference reader drops them)."""
    if len(wrapper) and wrapper.keys() and wrapper.get(_XSI_NIL) in _NIL:
        raise _Odd
    return wrapper


def _kids(item: Any, tag: str) -> dict[str, Any]:
    """A list item's children by tag. An item of another tag, without children, nil, with a child given
    twice or holding something that is not a field is odd."""
    if item.tag != tag:
        raise _Odd
    kids = {k.tag: k for k in item}
    if not kids or len(kids) != len(item) or not _NOT_FIELDS.isdisjoint(kids) \
            or (_XSI_NIL in item.keys() and item.get(_XSI_NIL) in _NIL):
        raise _Odd
    return kids


def _generic_nil(el: Any, keys: list[str]) -> bool:
    """Whether a field outside the reference reader's schema, with these attributes, is nil. That reader
    reads such a field by its shape: a ``desc`` attribute makes it an object (odd here)."""
    if "desc" in keys:
        raise _Odd
    return _XSI_NIL in keys and el.get(_XSI_NIL) in _NIL


def _fast_row(user: Any, ptype: str) -> tuple[Any, ...]:
    f = {c.tag: c for c in user}
    if len(f) != len(user) or etree.Entity in f:  # a field given twice: the reference reader says which
        raise _Odd
    g = f.get
    row: list[Any] = []
    add = row.append
    for tag, kind in _TOP_LEAVES:  # _text() written out: these are most of the fields read
        el = g(tag)
        if el is None:
            add("")
            continue
        if len(el):
            raise _Odd
        if kind == 1:
            if (ks := el.keys()) and _generic_nil(el, ks):
                add("")
                continue
            t = el.text
            add(" ".join(t.split()) if t else "")
            continue
        t = el.text
        if not t or (_XSI_NIL in el.keys() and el.get(_XSI_NIL) in _NIL):
            add("")
        elif kind == 2:
            add(t.strip())
        else:
            add(_date(t))
    add("")  # bad_dates: a record with one goes through the reference reader
    # contact_info: each list once; the preferred item, else the first
    emails: list[tuple[bool, str, Any]] = []
    phones: list[tuple[bool, str]] = []
    addresses: list[tuple[bool, str, str, str]] = []
    contact = g("contact_info")
    if contact is not None and len(contact):
        if _XSI_NIL in contact.keys() and contact.get(_XSI_NIL) in _NIL:
            raise _Odd
        seen: set[str] = set()
        for w in contact:
            t = w.tag
            if t in seen or t in _NOT_FIELDS:
                raise _Odd
            seen.add(t)
            if t == "emails":
                for item in _list(w):
                    k = _kids(item, "email")
                    emails.append((_pref(item.get("preferred")), " ".join(_text(k.get("email_address")).split())
                                   .lower(), k.get("email_types")))
            elif t == "phones":
                for item in _list(w):
                    k = _kids(item, "phone")
                    t = _text(k.get("phone_number"))
                    phones.append((_pref(item.get("preferred")), digits(t) if t else ""))
            elif t == "addresses":
                for item in _list(w):
                    k = _kids(item, "address")
                    addresses.append((_pref(item.get("preferred")), " ".join(_text(k.get("line1")).split()),
                                      " ".join(_text(k.get("city")).split()),
                                      " ".join(_text(k.get("postal_code")).split())))
    best_email = None
    for e in emails:
        if e[0]:
            best_email = e
            break
    else:
        if emails:
            best_email = emails[0]
    if best_email is not None:
        types = set()
        if (w := best_email[2]) is not None:
            for x in _list(w):
                if x.tag != "email_type":
                    raise _Odd
                if c := _text(x):
                    types.add(c.strip())
        for e in emails:  # the other emails' types are read too: an odd one sends the record to the reference
            if e is not best_email and (w := e[2]) is not None:
                for x in _list(w):
                    if x.tag != "email_type":
                        raise _Odd
                    _text(x)
        types.discard("")
        add(best_email[1])
        add(";".join(sorted({e[1] for e in emails} - {""})))
        add(";".join(sorted(types)))
    else:
        add("")
        add("")
        add("")
    add(len(emails))
    add(sum(1 for e in emails if e[0]))
    best_phone = ""
    for p in phones:
        if p[0]:
            best_phone = p[1]
            break
    else:
        if phones:
            best_phone = phones[0][1]
    add(best_phone)
    pid = _text(g("primary_id"))
    id_values = {"".join(pid.split()).casefold()} if pid else set()
    identifiers = []
    if (w := g("user_identifiers")) is not None:
        for item in _list(w):
            k = _kids(item, "user_identifier")
            words = _text(k.get("value")).split()
            identifiers.append(f"{_text(k.get('id_type')).strip()}={' '.join(words)}")
            if words:
                id_values.add("".join(words).casefold())
    id_values.discard("")
    add(";".join(sorted(identifiers)))
    add(";".join(sorted(id_values)))
    best_address = None
    for a in addresses:
        if a[0]:
            best_address = a
            break
    else:
        if addresses:
            best_address = addresses[0]
    if best_address is not None:
        add(best_address[1])
        add(best_address[2])
        add(best_address[3])
    else:
        add("")
        add("")
        add("")
    roles: set[str] = set()
    if (w := g("user_roles")) is not None:
        for item in _list(w):
            roles.add(_text(_kids(item, "user_role").get("role_type")).strip())
    roles.discard("")
    add(";".join(sorted(roles)))
    add(any(r != "200" for r in roles))
    patron_type, stats = None, set()
    if (w := g("user_statistics")) is not None:
        for item in _list(w):
            k = _kids(item, "user_statistic")
            cat = _text(k.get("statistic_category")).strip()
            stats.add(cat)
            if patron_type is None and _text(k.get("category_type")).strip() == ptype:
                patron_type = cat
    stats.discard("")
    add(patron_type or "")
    add(";".join(sorted(stats)))
    add(_num(g("loans")))
    add(_num(g("requests")))
    add(_num(g("fees")))
    if (el := g("pref_first_name")) is None:
        add("")
    elif len(el):
        raise _Odd
    elif (ks := el.keys()) and _generic_nil(el, ks):
        add("")
    else:
        add(" ".join(el.text.split()) if el.text else "")
    add(phones[0][1] if len(phones) == 1 else joined(p[1] for p in phones))
    add(joined(address_entry(a[1], a[3]) for a in addresses) if addresses else "")
    return tuple(row)


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
        detail = " ".join(str(err.msg).split())
        # Bytes that are not in the declared (or, with no declaration, UTF-8) encoding: an export saved by
        # an editor in another code page. Say how to fix it rather than only where it broke.
        hint = ("; save it as UTF-8, or declare its encoding in the first line, e.g. "
                '<?xml version="1.0" encoding="ISO-8859-1"?>') if "encoding" in detail.lower() else ""
        raise SourceError(f"{name} {what} (line {err.lineno}: {detail}){hint}") from None
    except OSError as err:
        raise SourceError(f"{name} cannot be read: {err}") from None
    except NotAUserFile as err:
        raise SourceError(f"{name} {err}") from None
    return rows, errors, n
