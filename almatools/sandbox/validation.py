"""Types and sizes of every field of a user object the sandbox accepts on POST and PUT.

Alma reads a JSON body with a Java (Jackson/JAXB) reader into typed classes, so a value of the wrong
shape never reaches its business checks: ``{"primary_id": {"a": 1}}``, an email address sent as a list,
a date that is not a date. It answers those with a *wrapped* error whose code is ``BAD_REQUEST`` and whose
message names the Java reference chain of the field, e.g. (recorded reply, see
``tests/fixtures/alma/error_wrapped_bad_request.json``)::

    {"web_service_result": {"errorsExist": true, "errorList": {"error": {"errorCode": "BAD_REQUEST",
     "errorMessage": "\\n(was java.lang.IllegalArgumentException) (through reference chain:
     com.exlibris.alma.ws.jaxb.partner.Partner[\\"contact_info\\"]->…Address[\\"start_date\\"])", …}}}}

:func:`clean_user` walks a parsed body against the user object's schema (``rest_user.xsd``, see the
reference §4), and returns a copy holding only the fields the schema knows, with numbers and booleans
sent for text fields turned into text (as Jackson does). It raises :class:`BodyError` for:

* ``kind="type"``: a value of the wrong JSON type, a date that is not ``YYYY-MM-DD`` (optionally with
  ``Z``/offset/time), a non-finite number. Alma's reply: the wrapped ``BAD_REQUEST`` above.
* ``kind="value"``: a value Alma could store but the sandbox could never serve back: text longer than
  the schema allows (255 characters for ids and names, per the XSD; our own bound of 4,000 for notes
  and other free text, and 1,000 items per list), or characters XML 1.0 cannot carry (NUL and the other
  C0 controls, lone surrogates, U+FFFE/U+FFFF), which would break the XML GET and list pages. Alma's
  exact reply for these is not public; the sandbox answers 400 ``401676`` with a message that names the
  field (our choice).

Fields the schema does not know are dropped (Jackson in Alma ignores unknown properties), so nothing is
stored that the XML writer cannot write. ``category_type`` of a statistic is output-only and dropped too.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["BodyError", "MAX_BODY_BYTES", "clean_user", "java_chain"]

MAX_BODY_BYTES = 1_000_000
"""Largest request body the sandbox reads (our bound: a user object is a few kilobytes; Alma's is not public)."""
SHORT = 255  # XSD: primary_id, names and external_id are at most 255 characters
LONG = 4000  # our bound for notes and other free text
MAX_ITEMS = 1000  # our bound for one list (identifiers, notes, addresses…)
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:\d{2}|T[0-9:.]+(Z|[+-]\d{2}:\d{2})?)?$")
_JAVA = "com.exlibris.alma.ws.jaxb.user."


class BodyError(ValueError):
    """A user body field Alma would refuse.

    Attributes:
        kind: ``"type"`` (Alma's JSON reader refuses it: wrapped BAD_REQUEST) or ``"value"`` (too long,
            or characters XML cannot carry).
        path: where, as ``(Java class, field)`` steps and list indexes, for :func:`java_chain`.
        detail: what is wrong, in words.
    """

    def __init__(self, kind: str, path: list[Any], detail: str) -> None:
        self.kind, self.path, self.detail = kind, list(path), detail
        super().__init__(f"{dotted(path)}: {detail}")


def dotted(path: list[Any]) -> str:
    """``contact_info.email[0].email_address`` for a path."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step[1]}" if out else step[1])
    return out


def java_chain(path: list[Any]) -> str:
    """The path as a Jackson reference chain: ``…User["contact_info"]->…ContactInfo["email"]->java.util.ArrayList[0]``."""
    parts = []
    for step in path:
        parts.append(f"java.util.ArrayList[{step}]" if isinstance(step, int) else f'{_JAVA}{step[0]}["{step[1]}"]')
    return "->".join(parts)


# -- the schema -----------------------------------------------------------------------------------
# A spec is one of: "short", "long", "date", "bool", "code", "any" (output-only values that are dropped
# or kept as they are), a ("list", spec) pair, or a ("obj", JavaClassName, {field: spec}) triple.

_CODE_LIST = ("list", "code")
_PARAMETER = ("obj", "RoleParameter", {"type": "code", "scope": "code", "value": "code"})
SCHEMA: tuple = ("obj", "User", {
    "record_type": "code", "primary_id": "short", "first_name": "short", "middle_name": "short",
    "last_name": "short", "full_name": "long", "pin_number": "short", "user_title": "code",
    "job_category": "code", "job_description": "long", "gender": "code", "user_group": "code",
    "campus_code": "code", "web_site_url": "long", "cataloger_level": "code", "preferred_language": "code",
    "birth_date": "date", "expiry_date": "date", "purge_date": "date", "account_type": "code",
    "external_id": "short", "password": "short", "force_password_change": "short", "status": "code",
    "status_date": "date", "last_patron_activity_date": "date", "requests": "any", "loans": "any",
    "fees": "any", "pref_first_name": "short", "pref_middle_name": "short", "pref_last_name": "short",
    "pref_name_suffix": "short", "is_researcher": "bool", "researcher": "any", "link": "any",
    "source_link_id": "short", "source_institution_code": "short", "linking_id": "short",
    "contact_info": ("obj", "ContactInfo", {
        "address": ("list", ("obj", "Address", {
            "line1": "long", "line2": "long", "line3": "long", "line4": "long", "line5": "long",
            "city": "short", "state_province": "short", "postal_code": "short", "country": "code",
            "address_note": "long", "start_date": "date", "end_date": "date", "preferred": "bool",
            "segment_type": "short", "address_type": _CODE_LIST})),
        "email": ("list", ("obj", "Email", {
            "email_address": "short", "description": "long", "preferred": "bool", "segment_type": "short",
            "email_type": _CODE_LIST})),
        "phone": ("list", ("obj", "Phone", {
            "phone_number": "short", "preferred": "bool", "preferred_sms": "bool", "segment_type": "short",
            "phone_type": _CODE_LIST})),
    }),
    "user_identifier": ("list", ("obj", "UserIdentifier", {
        "value": "short", "id_type": "code", "note": "long", "status": "short", "segment_type": "short"})),
    "user_role": ("list", ("obj", "UserRole", {
        "status": "code", "scope": "code", "role_type": "code", "expiry_date": "date",
        "parameter": ("list", _PARAMETER)})),
    "user_block": ("list", ("obj", "UserBlock", {
        "block_type": "code", "block_description": "code", "block_status": "short", "block_note": "long",
        "created_by": "short", "created_date": "date", "expiry_date": "date", "item_loan_id": "short",
        "segment_type": "short"})),
    "user_note": ("list", ("obj", "UserNote", {
        "note_type": "code", "note_text": "long", "user_viewable": "bool", "popup_note": "bool",
        "created_by": "short", "created_date": "date", "segment_type": "short"})),
    # category_type is output-only (rest_user.xsd): it is not in the write schema, so it is dropped.
    "user_statistic": ("list", ("obj", "UserStatistic", {
        "statistic_category": "code", "statistic_note": "long", "segment_type": "short"})),
    "proxy_for_user": ("list", ("obj", "ProxyForUser", {"primary_id": "short", "full_name": "long"})),
    "rs_library": ("list", ("obj", "RsLibrary", {"code": "code"})),
    "library_notice": ("list", ("obj", "LibraryNotice", {"code": "code", "value": "bool"})),
})


def _text(value: Any, limit: int, path: list[Any]) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise BodyError("type", path, f"{value!r} is not a value Alma can read")
        value = str(value)
    if not isinstance(value, str):
        raise BodyError("type", path, f"expected text, got {type(value).__name__}")
    if _BAD_CHARS.search(value):
        raise BodyError("value", path, "contains a control character (such as NUL) that XML cannot carry")
    if len(value) > limit:
        raise BodyError("value", path, f"is {len(value):,} characters long; at most {limit:,} are allowed")
    return value


def _date(value: Any, path: list[Any]) -> str | None:
    text = _text(value, 40, path)
    if not text:
        return text
    match = _DATE.match(text)
    try:
        if match is None:
            raise ValueError(text)
        dt.date.fromisoformat(match.group(1))
    except ValueError:
        raise BodyError("type", path, f"{text!r} is not a date (YYYY-MM-DD)") from None
    return text


def _clean(value: Any, spec: Any, path: list[Any]) -> Any:
    if spec == "any":
        return value
    if spec == "short":
        return _text(value, SHORT, path)
    if spec == "long":
        return _text(value, LONG, path)
    if spec == "date":
        return _date(value, path)
    if spec == "bool":
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise BodyError("type", path, f"expected true or false, got {type(value).__name__}")
    if spec == "code":
        if value is None or isinstance(value, str):
            return _text(value, SHORT, path)
        if isinstance(value, Mapping):
            code = {"value": _text(value.get("value"), SHORT, path)}
            if "desc" in value:
                code["desc"] = _text(value.get("desc"), LONG, path)
            return code
        raise BodyError("type", path, f"expected a code ({{\"value\": …}}), got {type(value).__name__}")
    kind = spec[0]
    if kind == "list":
        if value is None:
            return None
        if not isinstance(value, list):
            raise BodyError("type", path, f"expected a list, got {type(value).__name__}")
        if len(value) > MAX_ITEMS:
            raise BodyError("value", path, f"has {len(value):,} entries; at most {MAX_ITEMS:,} are allowed")
        return [_clean(item, spec[1], [*path, index]) for index, item in enumerate(value)]
    _, java, fields = spec
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BodyError("type", path, f"expected an object, got {type(value).__name__}")
    return {key: _clean(item, fields[key], [*path, (java, key)]) for key, item in value.items() if key in fields}


def clean_user(data: Any) -> dict[str, Any]:
    """A checked copy of a user body: only the schema's fields, text as text.

    Raises:
        BodyError: a field of the wrong type (``kind="type"``) or a value the sandbox could not serve
            back (``kind="value"``).
    """
    if not isinstance(data, Mapping):
        raise BodyError("type", [], f"expected a user object, got {type(data).__name__}")
    return _clean(data, SCHEMA, [])
