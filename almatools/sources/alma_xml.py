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
    joined,
    user_row,
)
from almatools.sources.base import MAX_RECORD_BYTES, _error_tuple

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
