"""The patron table: one row per Alma user, the columns every rule and the duplicate linkage read.

Alma user objects are nested (emails, identifiers and addresses are lists, codes are objects); the
analysis works on a flat, columnar table instead. :func:`user_row` flattens one user object;
:func:`users_frame` builds the table. Lists are kept as ``;``-joined text (sorted, de-duplicated) so
the table stays cheap at a million rows.

Columns (all text unless noted; empty text when the record has nothing):

=========================  =====================================================================
primary_id                 as stored (Alma compares it ignoring case)
first_name, middle_name,   the name parts
last_name
user_group                 code, e.g. ``UGRAD``
account_type               ``INTERNAL`` (locally managed) or ``EXTERNAL`` (SIS-managed)
external_id                the SIS profile code of an EXTERNAL user
status                     ``ACTIVE`` or ``INACTIVE``
record_type                ``PUBLIC``, ``STAFF`` or ``CONTACT``
expiry_date, purge_date,   ISO dates ``YYYY-MM-DD`` ("" when absent)
birth_date
bad_dates                  the date fields whose value is not a date (``;``-joined)
email                      the preferred email (else the first), lower case
emails                     every email address, lower case, ``;``-joined
email_types                the preferred email's types
email_count                int: number of emails
preferred_emails           int: emails marked preferred
phone                      the preferred phone (else the first), digits only
identifiers                every additional identifier as ``TYPE=value`` (``;``-joined)
identifier_values          every identifier value and the primary id, normalised: case folded,
                           spaces removed (``;``-joined)
line1, city, postal_code   the preferred address (else the first)
roles                      role_type codes (``;``-joined); ``200`` is Patron
staff_role                 bool: a role other than Patron
patron_type                the statistic category whose category_type is PATRON_TYPE (the policy's),
                           where a file carries that output-only field; the rules also accept any
                           statistic whose code the policy names as a patron type
statistics                 every statistic category (``;``-joined)
loans, requests, fees      float: fulfillment counts where the source has them (else 0)
pref_first_name            Alma's preferred first name (``Jack`` for Hương), "" when unset
phones                     every phone number, digits only (``;``-joined)
addresses                  every address as ``line1|postal_code`` (``;``-joined; ``;`` and ``|`` in
                           a line become ``,``)
=========================  =====================================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import pandas as pd

from almatools.normalise import identifier_key

__all__ = ["USER_COLUMNS", "address_entry", "digits", "empty_frame", "joined", "normalise_identifier", "rows_frame",
           "user_row", "users_frame"]

USER_COLUMNS = (
    "primary_id", "first_name", "middle_name", "last_name", "user_group", "account_type", "external_id", "status",
    "record_type", "expiry_date", "purge_date", "birth_date", "bad_dates", "email", "emails", "email_types",
    "email_count", "preferred_emails", "phone", "identifiers", "identifier_values", "line1", "city", "postal_code",
    "roles", "staff_role", "patron_type", "statistics", "loans", "requests", "fees", "pref_first_name", "phones",
    "addresses",
)
_INT_COLUMNS = ("email_count", "preferred_emails")
_FLOAT_COLUMNS = ("loans", "requests", "fees")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})?")
# pandas' "string" columns are Arrow-backed here (pandas 3, or pyarrow as the default storage): the table's
# text columns can then be built as Arrow arrays directly, the same dtype, several times faster.
_ARROW_STRINGS = pd.StringDtype().storage == "pyarrow"


normalise_identifier = identifier_key
"""An identifier as Alma compares it (:func:`almatools.normalise.identifier_key`)."""


_NOT_DIGIT = re.compile(r"[^0-9]")


def digits(text: Any) -> str:
    """The digits of a phone number as written."""
    text = str(text or "")
    return _NOT_DIGIT.sub("", text) if text.isascii() else "".join(ch for ch in text if ch.isdigit())


def address_entry(line1: Any, postal_code: Any) -> str:
    """One address of the ``addresses`` column: ``line1|postal_code`` ("" without a street line)."""
    line = _text(line1).replace(";", ",").replace("|", ",")
    return f"{line}|{_text(postal_code).replace(';', ',').replace('|', ',')}" if line else ""


def joined(values: Iterable[str]) -> str:
    """Distinct non-empty values, sorted, ``;``-joined."""
    return ";".join(sorted(set(values) - {""}))


def _code(value: Any) -> str:
    if isinstance(value, Mapping):
        value = value.get("value")
    return "" if value is None else str(value).strip()


def _text(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split())


def _date(value: Any) -> tuple[str, bool]:
    """(ISO date or "", ok). Alma writes ``2026-06-30Z``; anything that is not a date is not ok."""
    if value is None or value == "":
        return "", True
    match = _DATE.fullmatch(str(value).strip())
    if not match:
        return "", False
    try:
        date.fromisoformat(match.group(1))
    except ValueError:
        return "", False
    return match.group(1), True


def _preferred(items: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for item in items:
        if item.get("preferred") is True:
            return item
    return items[0] if items else None


def _number(value: Any) -> float:
    if isinstance(value, Mapping):
        value = value.get("value")
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def user_row(user: Mapping[str, Any], *, patron_type_category_type: str = "PATRON_TYPE") -> dict[str, Any]:
    """Flatten one Alma user object (JSON form) into a row of :data:`USER_COLUMNS`."""
    contact = user.get("contact_info") or {}
    emails = [e for e in contact.get("email") or [] if isinstance(e, Mapping)]
    phones = [p for p in contact.get("phone") or [] if isinstance(p, Mapping)]
    addresses = [a for a in contact.get("address") or [] if isinstance(a, Mapping)]
    best_email = _preferred(emails)
    best_phone = _preferred(phones)
    best_address = _preferred(addresses)
    identifiers = [i for i in user.get("user_identifier") or [] if isinstance(i, Mapping)]
    roles = sorted({_code(r.get("role_type")) for r in user.get("user_role") or [] if isinstance(r, Mapping)} - {""})
    stats = [s for s in user.get("user_statistic") or [] if isinstance(s, Mapping)]
    dates: dict[str, str] = {}
    bad: list[str] = []
    for name in ("expiry_date", "purge_date", "birth_date"):
        dates[name], ok = _date(user.get(name))
        if not ok:
            bad.append(name)
    id_values = {normalise_identifier(user.get("primary_id"))}
    id_values.update(normalise_identifier(i.get("value")) for i in identifiers)
    id_values.discard("")
    return {
        "primary_id": _text(user.get("primary_id")),
        "first_name": _text(user.get("first_name")),
        "middle_name": _text(user.get("middle_name")),
        "last_name": _text(user.get("last_name")),
        "user_group": _code(user.get("user_group")),
        "account_type": _code(user.get("account_type")),
        "external_id": _text(user.get("external_id")),
        "status": _code(user.get("status")),
        "record_type": _code(user.get("record_type")),
        **dates,
        "bad_dates": ";".join(bad),
        "email": _text(best_email.get("email_address")).lower() if best_email else "",
        "emails": ";".join(sorted({_text(e.get("email_address")).lower() for e in emails} - {""})),
        "email_types": ";".join(sorted({_code(t) for t in (best_email or {}).get("email_type") or []} - {""})),
        "email_count": len(emails),
        "preferred_emails": sum(1 for e in emails if e.get("preferred") is True),
        "phone": digits((best_phone or {}).get("phone_number")),
        "identifiers": ";".join(sorted(f"{_code(i.get('id_type'))}={_text(i.get('value'))}" for i in identifiers)),
        "identifier_values": ";".join(sorted(id_values)),
        "line1": _text((best_address or {}).get("line1")),
        "city": _text((best_address or {}).get("city")),
        "postal_code": _text((best_address or {}).get("postal_code")),
        "roles": ";".join(roles),
        "staff_role": any(r != "200" for r in roles),
        "patron_type": next((_code(s.get("statistic_category")) for s in stats
                             if _code(s.get("category_type")) == patron_type_category_type), ""),
        "statistics": ";".join(sorted({_code(s.get("statistic_category")) for s in stats} - {""})),
        "loans": _number(user.get("loans")),
        "requests": _number(user.get("requests")),
        "fees": _number(user.get("fees")),
        "pref_first_name": _text(user.get("pref_first_name")),
        "phones": joined(digits(p.get("phone_number")) for p in phones),
        "addresses": joined(address_entry(a.get("line1"), a.get("postal_code")) for a in addresses),
    }


def users_frame(users: Iterable[Mapping[str, Any]] | Iterable[dict[str, Any]], *, rows: bool = False,
                patron_type_category_type: str = "PATRON_TYPE") -> pd.DataFrame:
    """The patron table of some users.

    Args:
        users: Alma user objects, or (with ``rows=True``) rows already made by :func:`user_row`.
        rows: the input is already flattened.
        patron_type_category_type: the statistic category type that holds the patron type.
    """
    data = users if rows else (user_row(u, patron_type_category_type=patron_type_category_type) for u in users)
    return rows_frame([tuple(r[c] for c in USER_COLUMNS) for r in data])


def rows_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """The patron table from rows given as tuples in :data:`USER_COLUMNS` order (the fast loaders' form)."""
    columns = list(zip(*rows)) if rows else [()] * len(USER_COLUMNS)
    return pd.DataFrame({name: _column(name, values) for name, values in zip(USER_COLUMNS, columns)})


def empty_frame() -> pd.DataFrame:
    """A patron table without rows (every column, with its type)."""
    return rows_frame([])


def _column(name: str, values: Iterable[Any]) -> Any:
    if name in _INT_COLUMNS:
        return pd.array([v or 0 for v in values], dtype="int32")
    if name in _FLOAT_COLUMNS:
        return pd.array([float(v or 0) for v in values], dtype="float64")
    if name == "staff_role":
        return pd.array([bool(v) for v in values], dtype="bool")
    if _ARROW_STRINGS:  # straight to Arrow: pandas' own conversion checks every value in Python first
        import pyarrow as pa
        import pyarrow.compute as pc

        if not isinstance(values, (list, tuple)):
            values = list(values)
        try:
            return pd.arrays.ArrowStringArray(pc.fill_null(pa.array(values, type=pa.large_string()), ""))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text: pandas says what it makes of it
            pass
    return pd.array(["" if v is None else v for v in values], dtype="string")
