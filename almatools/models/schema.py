"""The shape of Alma's user object (which fields are text, codes, dates, lists), its dates, and
:class:`RecordError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

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
