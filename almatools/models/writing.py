"""Alma user JSON to Alma's XML: one user, or a ``<users>`` file streamed."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from typing import IO, Any

from lxml import etree

from almatools.models.reading import _safe_parser
from almatools.models.schema import _CODE, _GENERIC, _NUM, _USER, XSI_NS, RecordError, _Ctx, _List

_SPECIAL = re.compile('[&<>"\r\n\t\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Newlines in text are written as character references so that every <user> is one line.
_TEXT_ESC = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;", "\n": "&#10;"})
_ATTR_ESC = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;",
                           "\n": "&#10;", "\t": "&#9;"})
_NIL = ' xsi:nil="true"'
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _esc(s: str, table: dict[int, str]) -> str:
    if _SPECIAL.search(s) is None:
        return s
    if _ILLEGAL.search(s):
        raise RecordError(f"character not allowed in XML in {s!r}")
    return s.translate(table)


def _scalar(value: Any) -> str:
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    raise RecordError(f"expected a string, number or boolean, got {type(value).__name__}")


def _at(err: RecordError, part: str) -> RecordError:
    """The same error, one level further out (errors carry their path, built only when raised)."""
    sub = err.field or ""
    return RecordError(err.reason, field=part + (sub if sub.startswith("[") or not sub else "/" + sub))


def _is_map(value: Any) -> bool:
    return value.__class__ is dict or isinstance(value, Mapping)


def _is_code(value: Any) -> bool:
    return _is_map(value) and "value" in value and set(value) <= {"value", "desc"}


def _write(tag: str, value: Any, spec: Any, out: list[str]) -> None:
    # Hot path: a million users make hundreds of millions of calls; dispatch on identity and type.
    if value is None:
        out.append(f"<{tag}{_NIL}/>")
        return
    if spec is None:  # a field the schema does not know: go by the value's shape
        if _is_code(value):
            spec = _CODE
        elif isinstance(value, list):
            spec = _List(tag + "s", tag, None)
        elif _is_map(value):
            spec = _GENERIC
    if spec is _CODE:
        if _is_map(value):
            code, desc = value.get("value"), value.get("desc")
        else:  # lenient: a bare code
            code, desc = value, None
        attr = "" if desc is None else f' desc="{_esc(_scalar(desc), _ATTR_ESC)}"'
        if code is None:
            out.append(f"<{tag}{attr}{_NIL}/>")
        else:
            text = code if code.__class__ is str else _scalar(code)
            if _SPECIAL.search(text):
                text = _esc(text, _TEXT_ESC)
            out.append(f"<{tag}{attr}>{text}</{tag}>")
    elif spec is _NUM:
        if _is_map(value):
            num, link = value.get("value"), value.get("link")
        else:
            num, link = value, None
        attr = "" if link is None else f' link="{_esc(_scalar(link), _ATTR_ESC)}"'
        if num is None:
            out.append(f"<{tag}{attr}{_NIL}/>")
        else:
            out.append(f"<{tag}{attr}>{_scalar(num)}</{tag}>")
    elif spec.__class__ is _List:
        if not isinstance(value, list):
            raise RecordError(f"expected a list, got {type(value).__name__}")
        if not value:
            out.append(f"<{spec.wrapper}/>")
            return
        out.append(f"<{spec.wrapper}>")
        item, item_spec = spec.item, spec.spec
        for i, v in enumerate(value, 1):
            try:
                _write(item, v, item_spec, out)
            except RecordError as err:
                raise _at(err, f"[{i}]") from None
        out.append(f"</{spec.wrapper}>")
    elif spec.__class__ is _Ctx:
        if not _is_map(value):
            raise RecordError(f"expected an object, got {type(value).__name__}")
        _write_obj(tag, value, spec, out)
    else:
        text = value if value.__class__ is str else _scalar(value)
        if _SPECIAL.search(text):
            text = _esc(text, _TEXT_ESC)
        out.append(f"<{tag}>{text}</{tag}>")


def _write_obj(tag: str, obj: Mapping[str, Any], ctx: _Ctx, out: list[str]) -> None:
    slot = len(out)
    out.append("")  # the start tag, once the attributes are known
    attrs, fields = "", ctx.fields
    for key, val in obj.items():
        try:
            if key in ctx.attrs:
                if val is not None:
                    attrs += f' {key}="{_esc(_scalar(val), _ATTR_ESC)}"'
                continue
            spec = fields.get(key)
            if spec is None and (not isinstance(key, str) or not _NAME.fullmatch(key)):
                raise RecordError(f"not a usable field name: {key!r}")
            _write(key, val, spec, out)
        except RecordError as err:
            raise _at(err, str(key)) from None
    if len(out) == slot + 1:
        out[slot] = f"<{tag}{attrs}/>"
    else:
        out[slot] = f"<{tag}{attrs}>"
        out.append(f"</{tag}>")


def _user_xml_str(user: Mapping[str, Any]) -> str:
    if not isinstance(user, Mapping):
        raise RecordError(f"a user must be an object, got {type(user).__name__}")
    out: list[str] = []
    _write_obj("user", user, _USER, out)
    s = "".join(out)
    if _NIL in s:  # declare the xsi prefix on <user> so that the element stands alone
        s = f'<user xmlns:xsi="{XSI_NS}"' + s[5:]
    return s


def user_to_xml_bytes(user: Mapping[str, Any], *, xml_declaration: bool = True) -> bytes:
    """Serialize one Alma user object to ``<user>`` XML (UTF-8, one line).

    Args:
        user: The user object as the JSON API returns it.
        xml_declaration: Start with ``<?xml …?>``. Pass ``False`` for a fragment to embed in a
            ``<users>`` document (see :func:`write_users_xml`).

    Returns:
        The XML bytes.

    Raises:
        RecordError: A value cannot be written as XML (e.g. a control character).
    """
    body = _user_xml_str(user).encode("utf-8")
    return b"<?xml version='1.0' encoding='UTF-8'?>\n" + body if xml_declaration else body


def user_to_xml(user: Mapping[str, Any]) -> etree._Element:
    """Convert an Alma user object (JSON form) to a ``<user>`` element.

    Raises:
        RecordError: A value cannot be written as XML.
    """
    return etree.fromstring(_user_xml_str(user).encode("utf-8"), _safe_parser())


def write_users_xml(out: IO[bytes], users: Iterable[Mapping[str, Any] | bytes], total: int) -> None:
    """Stream a ``<users total_record_count="N">`` document, one ``<user>`` per line.

    Args:
        out: A binary file object.
        users: User objects, or fragments already made by
            ``user_to_xml_bytes(u, xml_declaration=False)``.
        total: The number of users; Alma's files state it up front.

    Raises:
        ValueError: ``users`` does not hold exactly ``total`` items.
    """
    out.write(b"<?xml version='1.0' encoding='UTF-8'?>\n"
              + f'<users total_record_count="{int(total)}">\n'.encode())
    n = 0
    for u in users:
        out.write(u if isinstance(u, bytes) else user_to_xml_bytes(u, xml_declaration=False))
        out.write(b"\n")
        n += 1
    out.write(b"</users>\n")
    if n != total:
        raise ValueError(f"write_users_xml: {n} users written but total_record_count says {total}")


def users_to_xml_bytes(users: Iterable[Mapping[str, Any]]) -> bytes:
    """Serialize users to a ``<users>`` document, as the SIS load and Export Users v2 use.

    Raises:
        RecordError: A value cannot be written as XML.
    """
    parts = [user_to_xml_bytes(u, xml_declaration=False) for u in users]
    buf = io.BytesIO()
    write_users_xml(buf, parts, len(parts))
    return buf.getvalue()
