"""Alma's user XML to user JSON, read safely (no entities, DTDs or network), one user at a time."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

from lxml import etree

from almatools.models.schema import (
    _BOOL,
    _CODE,
    _DATE,
    _DATETIME,
    _GENERIC,
    _NUM,
    _TEXT,
    _USER,
    _XSI_NIL,
    RecordError,
    _check_datetime,
    _Ctx,
    _List,
    parse_alma_date,
)

_PARSERS = threading.local()  # lxml parsers must not be shared between threads


def _safe_parser() -> etree.XMLParser:
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                                   huge_tree=False, remove_comments=True, remove_pis=True)
    return parser


def _children(el: etree._Element, path: str) -> list[etree._Element]:
    kids = []
    for c in el:
        if isinstance(c.tag, str):
            kids.append(c)
        elif isinstance(c, etree._Entity):
            raise RecordError(f"entity reference {c.text} is not allowed", field=path)
    return kids


def _is_nil(el: etree._Element) -> bool:
    return el.get(_XSI_NIL) in ("true", "1")


def _read_text(el: etree._Element, kind: Any, path: str) -> Any:
    if _children(el, path):
        raise RecordError("expected a value, found nested elements", field=path)
    text = el.text or ""
    try:
        if kind is _BOOL:
            low = text.strip().lower()
            if low not in ("true", "false"):
                raise ValueError(f"not a boolean: {text!r}")
            return low == "true"
        if kind is _DATE and text:
            parse_alma_date(text)
        elif kind is _DATETIME and text:
            _check_datetime(text)
    except ValueError as err:
        raise RecordError(str(err), field=path) from None
    return text


def _number(text: str, path: str) -> int | float:
    s = text.strip()
    try:
        return int(s) if re.fullmatch(r"[+-]?\d+", s) else float(s)
    except ValueError:
        raise RecordError(f"not a number: {text!r}", field=path) from None


def _read(el: etree._Element, spec: Any, path: str) -> Any:
    if spec is None:
        return _read_generic(el, path)
    if spec is _CODE:
        desc = el.get("desc")
        if _is_nil(el):
            return None if desc is None else {"value": None, "desc": desc}
        return {"value": _read_text(el, _TEXT, path), "desc": desc}
    if _is_nil(el):
        return None
    if spec is _NUM:
        value = _number(_read_text(el, _TEXT, path), path)
        link = el.get("link")
        return {"value": value} if link is None else {"value": value, "link": link}
    if isinstance(spec, _List):
        items = []
        for i, c in enumerate(_children(el, path), 1):
            if c.tag != spec.item:
                raise RecordError(f"<{spec.wrapper}> may only hold <{spec.item}>, found <{c.tag}>",
                                  field=path)
            items.append(_read(c, spec.spec, f"{path}[{i}]"))
        return items
    if isinstance(spec, _Ctx):
        return _read_obj(el, spec, path)
    return _read_text(el, spec, path)


def _read_obj(el: etree._Element, ctx: _Ctx, path: str) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    prefix = f"{path}/" if path else ""
    for name, kind in ctx.attrs.items():
        raw = el.get(name)
        if raw is None:
            if name in ctx.null_attrs:
                obj[name] = None
            continue
        if kind is _BOOL:
            low = raw.strip().lower()
            if low not in ("true", "false"):
                raise RecordError(f"not a boolean: {raw!r}", field=prefix + name)
            obj[name] = low == "true"
        else:
            obj[name] = raw
    for c in _children(el, path):
        key, spec = ctx.by_tag.get(c.tag, (c.tag, None))
        if key in ctx.attrs:  # an attribute that some other tool wrote as an element
            spec = ctx.attrs[key]
        elif spec is None:  # unknown: a wrapper of like items is a list named after its items
            kids = _children(c, prefix + key)
            if kids and all(k.tag == kids[0].tag for k in kids) and _plural_of(c.tag, kids[0].tag):
                key = kids[0].tag
        if key in obj and key not in ctx.attrs:
            raise RecordError(f"<{c.tag}> appears twice", field=prefix + key)
        obj[key] = _read(c, spec, prefix + key)
    return obj


def _plural_of(wrapper: str, item: str) -> bool:
    return wrapper in (item + "s", item + "es") or (item.endswith("y") and wrapper == item[:-1] + "ies")


def _read_generic(el: etree._Element, path: str) -> Any:
    """Read an element the schema does not know, by its shape."""
    kids = _children(el, path)
    if _is_nil(el):
        return None if "desc" not in el.attrib else {"value": None, "desc": el.get("desc")}
    if not kids:
        if "desc" in el.attrib:
            return {"value": el.text or "", "desc": el.get("desc")}
        return el.text or ""
    tags = {c.tag for c in kids}
    if len(tags) == 1 and _plural_of(el.tag, kids[0].tag):
        return [_read_generic(c, f"{path}[{i}]") for i, c in enumerate(kids, 1)]
    return _read_obj(el, _GENERIC, path)


def user_from_xml(elem: etree._Element) -> dict[str, Any]:
    """Convert a ``<user>`` element to the Alma user object (JSON form).

    Dates are checked (a ``birth_date`` that is not a date is an error) but stay strings.

    Raises:
        RecordError: The element is not a well-formed user record; ``field`` names the place.
    """
    if elem.tag != "user":
        raise RecordError(f"expected <user>, found <{elem.tag}>")
    return _read_obj(elem, _USER, "")


def user_from_xml_bytes(data: bytes) -> dict[str, Any]:
    """Parse one ``<user>`` document (safely: no entities, DTDs or network).

    Raises:
        RecordError: The bytes are not XML or not a user record.
    """
    try:
        root = etree.fromstring(data, _safe_parser())
    except etree.XMLSyntaxError as err:
        raise RecordError(f"XML syntax error: {err.msg}", line=err.lineno) from err
    return user_from_xml(root)


def iter_users_xml(source: str | os.PathLike[str] | IO[bytes], *,
                   on_error: Callable[[RecordError], None] | None = None) -> Iterator[dict[str, Any]]:
    """Stream the users of an Alma user XML file (``<users><user>…`` or a single ``<user>``).

    Elements are cleared as they are read, so memory stays flat however large the file. The parser
    does not resolve entities, load DTDs, touch the network or accept huge text nodes.

    Args:
        source: A path or a binary file object (e.g. a member opened from a zip).
        on_error: Called with a :class:`RecordError` for each bad record (a date that is not a date,
            a list holding the wrong elements…); reading then continues with the next record.
            Without it the first bad record raises.

    Yields:
        User objects in file order.

    Raises:
        RecordError: The XML is not well formed (``line`` says where; this is never passed to
            ``on_error``, as nothing after it can be trusted), the root is not ``<users>`` or
            ``<user>``, or a record is bad and there is no ``on_error``.
    """
    if isinstance(source, (str, os.PathLike)):
        name: str | None = os.fspath(source)
        src: Any = name
    else:
        name, src = getattr(source, "name", None), source
        name = None if name is None else str(name)
    n = 0
    try:
        for n, elem in user_elements(src):
            try:
                user = user_from_xml(elem)
            except RecordError as err:
                located = err.located(file=name, record=n, line=elem.sourceline)
                if on_error is None:
                    raise located from None
                on_error(located)
                continue
            yield user
    except etree.XMLSyntaxError as err:
        raise RecordError(f"XML syntax error after {n} complete records: {err.msg}",
                          file=name, line=err.lineno) from err
    except NotAUserFile as err:
        raise RecordError(str(err), file=name) from None


class NotAUserFile(ValueError):
    """The XML's root is neither ``<users>`` nor ``<user>``."""


def user_elements(source: Any) -> Iterator[tuple[int, Any]]:
    """The ``<user>`` records of an Alma user XML file, as (record number from 1, element).

    The parser does not resolve entities, load DTDs, touch the network or accept huge text nodes.
    Each element is cleared (and dropped from its parent) once the consumer moves on, so memory stays
    flat however large the file; a ``<user>`` nested inside something else is not a record.

    Raises:
        lxml.etree.XMLSyntaxError: The XML is not well formed (raised where it stops being so).
        NotAUserFile: The root is not ``<users>`` or ``<user>`` (raised after the last record).
    """
    context = etree.iterparse(source, events=("end",), tag="user", resolve_entities=False,
                              no_network=True, load_dtd=False, huge_tree=False,
                              remove_comments=True, remove_pis=True)
    n = 0
    for _event, elem in context:
        parent = elem.getparent()
        if parent is not None and (parent.tag != "users" or parent.getparent() is not None):
            continue
        n += 1
        try:
            yield n, elem
        finally:
            elem.clear(keep_tail=False)
            if parent is not None:
                while elem.getprevious() is not None:
                    del parent[0]
    root = context.root
    if root is None or root.tag not in ("users", "user"):
        tag = None if root is None else root.tag
        raise NotAUserFile(f"not an Alma user file: the root element is <{tag}>, expected <users>")
