"""Alma user records: the Users API's JSON object, its XML form, and a typed read-only view.

Alma speaks two dialects of the same user record. The REST API returns JSON (``GET /users/{id}``);
the SIS load and Export Users (version 2) read and write XML with the element names of
``rest_user.xsd`` and no namespace. The mapping between them (reference §1) is mechanical but full of
small rules, all of which live here:

* code fields carry a description: ``<user_group desc="Faculty">FAC</user_group>`` is
  ``{"value": "FAC", "desc": "Faculty"}``; a missing ``desc`` attribute is ``"desc": None``, which is
  how Alma's own JSON shows a code without a description;
* XML list wrappers disappear in JSON: ``<user_identifiers><user_identifier>…`` is
  ``"user_identifier": [...]``, and likewise for roles, blocks, notes, statistics, proxies,
  rs_libraries, library notices, the addresses, emails and phones of ``contact_info``, their type
  lists and the parameters of a role; an empty wrapper is an empty list;
* the attributes ``preferred``, ``preferred_sms``, ``segment_type``, ``desc`` and ``link`` are plain
  keys; booleans are JSON ``true``/``false`` and XML ``"true"``/``"false"``;
* ``requests``, ``loans`` and ``fees`` are ``{"value": n, "link": url}`` in JSON and
  ``<loans link="url">n</loans>`` in XML;
* JSON ``null`` is written as ``xsi:nil="true"`` (the XML Schema convention), so that a full GET
  record (``"researcher": null``, ``"campus_code": {"value": null, "desc": ""}``) survives the trip;
  the user's own ``link`` attribute reads back as ``None`` when absent, as on a full GET;
* dates stay strings (``"2022-10-31Z"``); :func:`parse_alma_date` turns them into
  :class:`datetime.date`.

``user_from_xml(user_to_xml(u)) == u`` holds for every user object shaped like Alma's GET output (the
shape the sandbox generator produces); :func:`iter_users_xml` streams files of any size.

Example:
    >>> u = {"primary_id": "100000000", "user_group": {"value": "FAC", "desc": "Faculty"}}
    >>> user_to_xml_bytes(u, xml_declaration=False)
    b'<user><primary_id>100000000</primary_id><user_group desc="Faculty">FAC</user_group></user>'
"""

from __future__ import annotations

import copy
import io
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any, NamedTuple

from lxml import etree

__all__ = [
    "Address",
    "Email",
    "Identifier",
    "NotAUserFile",
    "Phone",
    "RecordError",
    "User",
    "format_alma_date",
    "iter_users_xml",
    "parse_alma_date",
    "user_from_xml",
    "user_from_xml_bytes",
    "user_elements",
    "user_to_xml",
    "user_to_xml_bytes",
    "users_to_xml_bytes",
    "write_users_xml",
]

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_NIL = f"{{{XSI_NS}}}nil"


class RecordError(ValueError):
    """A user record (or a whole file) that cannot be read or written.

    Attributes:
        file: The file name, when known.
        record: The 1-based number of the ``<user>`` element in the file, when known.
        field: The path of the offending field, e.g. ``"contact_info/email[2]/email_address"``.
        line: The line in the file, when known.
        reason: What is wrong, without the location.
    """

    def __init__(self, reason: str, *, file: str | None = None, record: int | None = None,
                 field: str | None = None, line: int | None = None) -> None:
        self.reason, self.file, self.record, self.field, self.line = reason, file, record, field, line
        super().__init__(self._message())

    def _message(self) -> str:
        where = [self.file or ""]
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(f"field {self.field}")
        loc = ", ".join(w for w in where if w)
        return f"{loc}: {self.reason}" if loc else self.reason

    def located(self, *, file: str | None = None, record: int | None = None,
                line: int | None = None) -> RecordError:
        """Return a copy with the location filled in where it was unknown."""
        return RecordError(self.reason, file=self.file or file,
                           record=self.record if self.record is not None else record,
                           field=self.field, line=self.line if self.line is not None else line)


# ---------------------------------------------------------------------------------------------
# Dates

_DATE_RE = re.compile(r"(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:\d{2})?")
_DATETIME_RE = re.compile(r"(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:\d{2})?")


def parse_alma_date(value: str | date | None) -> date | None:
    """Parse an Alma date (``"2022-10-31Z"``, ``"2022-10-31"`` or with an offset).

    Args:
        value: The string from a record; ``None`` and ``""`` mean no date. A ``date`` passes through.

    Returns:
        The calendar date, or ``None`` when the field is empty.

    Raises:
        ValueError: The value is not a date.
    """
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    m = _DATE_RE.fullmatch(str(value).strip())
    if not m:
        raise ValueError(f"not a date: {value!r} (expected YYYY-MM-DD or YYYY-MM-DDZ)")
    try:
        return date.fromisoformat(m.group(1))
    except ValueError:
        raise ValueError(f"not a date: {value!r}") from None


def format_alma_date(d: date | None) -> str | None:
    """Format a date the way Alma's JSON does (``"2022-10-31Z"``); ``None`` stays ``None``."""
    return None if d is None else f"{d.isoformat()}Z"


def _check_datetime(value: str) -> None:
    m = _DATETIME_RE.fullmatch(value.strip())
    if not m:
        raise ValueError(f"not a date-time: {value!r}")
    date.fromisoformat(m.group(1))


# ---------------------------------------------------------------------------------------------
# The schema: which field is what, per context (the same tag means different things in different
# places: `status` is a code on the user and a role but a plain string on an identifier).

_TEXT, _CODE, _BOOL, _NUM, _DATE, _DATETIME = "text", "code", "bool", "num", "date", "datetime"


@dataclass(frozen=True)
class _List:
    wrapper: str  # XML wrapper element; the JSON key is the item name
    item: str
    spec: Any  # a kind or a _Ctx


@dataclass(frozen=True)
class _Ctx:
    fields: Mapping[str, Any]  # JSON key (= XML tag, except lists) -> kind | _List | _Ctx
    attrs: Mapping[str, str] = field(default_factory=dict)  # JSON key -> _BOOL | _TEXT
    null_attrs: frozenset[str] = frozenset()  # attributes that read back as None when absent
    by_tag: dict[str, tuple[str, Any]] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for key, spec in self.fields.items():
            self.by_tag[spec.wrapper if isinstance(spec, _List) else key] = (key, spec)


_SEGMENT = {"segment_type": _TEXT}
_PARAMETER = _Ctx({"type": _CODE, "scope": _CODE, "value": _CODE})
_ADDRESS = _Ctx({"line1": _TEXT, "line2": _TEXT, "line3": _TEXT, "line4": _TEXT, "line5": _TEXT,
                 "city": _TEXT, "state_province": _TEXT, "postal_code": _TEXT, "country": _CODE,
                 "address_note": _TEXT, "start_date": _DATE, "end_date": _DATE,
                 "address_type": _List("address_types", "address_type", _CODE)},
                {"preferred": _BOOL, **_SEGMENT})
_EMAIL = _Ctx({"email_address": _TEXT, "description": _TEXT,
               "email_type": _List("email_types", "email_type", _CODE)},
              {"preferred": _BOOL, **_SEGMENT})
_PHONE = _Ctx({"phone_number": _TEXT, "phone_type": _List("phone_types", "phone_type", _CODE)},
              {"preferred": _BOOL, "preferred_sms": _BOOL, **_SEGMENT})
_CONTACT = _Ctx({"address": _List("addresses", "address", _ADDRESS),
                 "email": _List("emails", "email", _EMAIL),
                 "phone": _List("phones", "phone", _PHONE)})
_IDENTIFIER = _Ctx({"value": _TEXT, "id_type": _CODE, "note": _TEXT, "status": _TEXT}, _SEGMENT)
_ROLE = _Ctx({"status": _CODE, "scope": _CODE, "role_type": _CODE, "expiry_date": _DATE,
              "parameter": _List("parameters", "parameter", _PARAMETER)})
_BLOCK = _Ctx({"block_type": _CODE, "block_description": _CODE, "block_status": _TEXT,
               "block_note": _TEXT, "created_by": _TEXT, "created_date": _DATETIME,
               "expiry_date": _DATETIME, "item_loan_id": _TEXT}, _SEGMENT)
_NOTE = _Ctx({"note_type": _CODE, "note_text": _TEXT, "user_viewable": _BOOL, "popup_note": _BOOL,
              "created_by": _TEXT, "created_date": _DATETIME}, _SEGMENT)
_STATISTIC = _Ctx({"statistic_category": _CODE, "category_type": _CODE, "statistic_note": _TEXT},
                  _SEGMENT)
_PROXY = _Ctx({"primary_id": _TEXT, "full_name": _TEXT})
_RS_LIBRARY = _Ctx({"code": _CODE})
_NOTICE = _Ctx({"code": _CODE, "value": _BOOL})
_USER = _Ctx(
    {"record_type": _CODE, "user_title": _CODE, "job_category": _CODE, "gender": _CODE,
     "user_group": _CODE, "campus_code": _CODE, "cataloger_level": _CODE,
     "preferred_language": _CODE, "account_type": _CODE, "status": _CODE,
     "birth_date": _DATE, "expiry_date": _DATE, "purge_date": _DATE, "status_date": _DATE,
     "last_patron_activity_date": _DATE, "is_researcher": _BOOL,
     "requests": _NUM, "loans": _NUM, "fees": _NUM, "contact_info": _CONTACT,
     "user_identifier": _List("user_identifiers", "user_identifier", _IDENTIFIER),
     "user_role": _List("user_roles", "user_role", _ROLE),
     "user_block": _List("user_blocks", "user_block", _BLOCK),
     "user_note": _List("user_notes", "user_note", _NOTE),
     "user_statistic": _List("user_statistics", "user_statistic", _STATISTIC),
     "proxy_for_user": _List("proxy_for_users", "proxy_for_user", _PROXY),
     "rs_library": _List("rs_libraries", "rs_library", _RS_LIBRARY),
     "library_notice": _List("library_notices", "library_notice", _NOTICE)},
    {"link": _TEXT}, null_attrs=frozenset({"link"}))
_GENERIC = _Ctx({})

# ---------------------------------------------------------------------------------------------
# Writing: a direct string serializer (several times faster than building lxml trees, which
# matters at a million users); user_to_xml parses its output.

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


# ---------------------------------------------------------------------------------------------
# Reading

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


# ---------------------------------------------------------------------------------------------
# The typed view


class Email(NamedTuple):
    """One email of a user."""

    address: str
    types: tuple[str, ...]
    preferred: bool
    segment_type: str | None = None


class Identifier(NamedTuple):
    """One additional identifier of a user (``user_identifier``)."""

    id_type: str | None
    value: str
    status: str | None


class Phone(NamedTuple):
    """One phone number of a user."""

    number: str
    types: tuple[str, ...]
    preferred: bool
    preferred_sms: bool


class Address(NamedTuple):
    """One postal address of a user (the fields used to compare people)."""

    line1: str
    city: str
    postal_code: str
    types: tuple[str, ...]
    preferred: bool


def _code(value: Any) -> str | None:
    if isinstance(value, Mapping):
        v = value.get("value")
        return None if v is None else str(v)
    return None if value is None else str(value)


def _codes(items: Any) -> tuple[str, ...]:
    return tuple(c for c in (_code(i) for i in items or ()) if c)


@dataclass(frozen=True)
class User:
    """A read-only, typed view of one Alma user object, keeping the raw payload.

    Build it with :meth:`from_json` (or :meth:`from_xml`); :meth:`to_json` gives back exactly the
    payload it was made from, so records can be edited as JSON and written back losslessly.
    The raw payload is shared, not copied: treat it as read-only.

    Attributes:
        raw: The Alma user object as the JSON API returns it.
    """

    raw: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> User:
        """Wrap an Alma user object.

        Raises:
            RecordError: ``data`` is not an object.
        """
        if not isinstance(data, Mapping):
            raise RecordError(f"a user must be an object, got {type(data).__name__}")
        return cls(data)

    @classmethod
    def from_xml(cls, elem: etree._Element) -> User:
        """Read a ``<user>`` element (see :func:`user_from_xml`)."""
        return cls(user_from_xml(elem))

    def to_json(self) -> dict[str, Any]:
        """Return a deep copy of the raw payload."""
        return copy.deepcopy(dict(self.raw))

    def to_xml(self) -> etree._Element:
        """Return the record as a ``<user>`` element."""
        return user_to_xml(self.raw)

    def __hash__(self) -> int:
        return hash(self.primary_id.casefold())

    def _str(self, key: str) -> str:
        v = self.raw.get(key)
        return "" if v is None else str(v)

    @property
    def primary_id(self) -> str:
        """The primary identifier (Alma compares it case-insensitively)."""
        return self._str("primary_id")

    @property
    def first_name(self) -> str:
        """First name ("" when empty)."""
        return self._str("first_name")

    @property
    def middle_name(self) -> str:
        """Middle name ("" when empty)."""
        return self._str("middle_name")

    @property
    def last_name(self) -> str:
        """Last name ("" when empty)."""
        return self._str("last_name")

    @property
    def full_name(self) -> str:
        """Alma's ``full_name``, or the name parts joined when the record has none."""
        return self._str("full_name") or " ".join(
            p for p in (self.first_name, self.middle_name, self.last_name) if p)

    @property
    def user_group(self) -> str | None:
        """The user group code, e.g. ``"UGRAD"``."""
        return _code(self.raw.get("user_group")) or None

    @property
    def account_type(self) -> str | None:
        """``"INTERNAL"`` (locally managed) or ``"EXTERNAL"`` (SIS-managed)."""
        return _code(self.raw.get("account_type")) or None

    @property
    def record_type(self) -> str | None:
        """``"PUBLIC"``, ``"STAFF"`` or ``"CONTACT"``."""
        return _code(self.raw.get("record_type")) or None

    @property
    def status(self) -> str | None:
        """``"ACTIVE"`` or ``"INACTIVE"``."""
        return _code(self.raw.get("status")) or None

    @property
    def external_id(self) -> str:
        """The SIS profile code of an external user ("" for internal users)."""
        return self._str("external_id")

    @property
    def expiry_date(self) -> date | None:
        """The expiry date. Raises ValueError if the record holds something that is not a date."""
        return parse_alma_date(self.raw.get("expiry_date"))

    @property
    def purge_date(self) -> date | None:
        """The purge date (no date: the Purge Users job never removes the record)."""
        return parse_alma_date(self.raw.get("purge_date"))

    @property
    def birth_date(self) -> date | None:
        """The birth date."""
        return parse_alma_date(self.raw.get("birth_date"))

    @property
    def emails(self) -> list[Email]:
        """The emails as (address, types, preferred, segment_type)."""
        return [Email(str(e.get("email_address") or ""), _codes(e.get("email_type")),
                      bool(e.get("preferred")), e.get("segment_type"))
                for e in self._contact("email")]

    @property
    def preferred_email(self) -> str | None:
        """The preferred email address, else the first one, else None."""
        emails = self.emails
        for e in emails:
            if e.preferred and e.address:
                return e.address
        return next((e.address for e in emails if e.address), None)

    @property
    def phones(self) -> list[Phone]:
        """The phone numbers as (number, types, preferred, preferred_sms)."""
        return [Phone(str(p.get("phone_number") or ""), _codes(p.get("phone_type")),
                      bool(p.get("preferred")), bool(p.get("preferred_sms")))
                for p in self._contact("phone")]

    @property
    def addresses(self) -> list[Address]:
        """The postal addresses (line1, city, postal code, types, preferred)."""
        return [Address(str(a.get("line1") or ""), str(a.get("city") or ""),
                        str(a.get("postal_code") or ""), _codes(a.get("address_type")),
                        bool(a.get("preferred")))
                for a in self._contact("address")]

    @property
    def identifiers(self) -> list[Identifier]:
        """The additional identifiers as (id_type, value, status)."""
        return [Identifier(_code(i.get("id_type")), str(i.get("value") or ""), i.get("status"))
                for i in self.raw.get("user_identifier") or ()]

    @property
    def all_ids(self) -> list[str]:
        """The primary id followed by every identifier value (what Alma's ``all_unique`` searches)."""
        return [self.primary_id] + [i.value for i in self.identifiers]

    @property
    def roles(self) -> list[str]:
        """The role type codes, e.g. ``["200", "21"]`` (200 is Patron)."""
        return [c for c in (_code(r.get("role_type")) for r in self.raw.get("user_role") or ()) if c]

    @property
    def statistics(self) -> list[str]:
        """The statistical category codes."""
        return [c for c in (_code(s.get("statistic_category"))
                            for s in self.raw.get("user_statistic") or ()) if c]

    def statistic(self, category_type: str) -> str | None:
        """The category code of the first statistic of the given category type (e.g. PATRON_TYPE)."""
        for s in self.raw.get("user_statistic") or ():
            if _code(s.get("category_type")) == category_type:
                return _code(s.get("statistic_category"))
        return None

    def is_sis_managed(self, sis_profiles: Iterable[str]) -> bool:
        """True for an EXTERNAL record whose ``external_id`` is one of the SIS profile codes."""
        return self.account_type == "EXTERNAL" and self.external_id in set(sis_profiles)

    @property
    def is_active(self) -> bool:
        """True when the status is ACTIVE (Alma's default when the field is missing)."""
        return (self.status or "ACTIVE") == "ACTIVE"

    def _contact(self, key: str) -> list[Mapping[str, Any]]:
        info = self.raw.get("contact_info") or {}
        return list(info.get(key) or ())
