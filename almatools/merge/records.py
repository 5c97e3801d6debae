"""The records of a merge: their fields, the survivor order (which record is kept), and the reasons."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

PROPOSALS_FILE = "proposals.json"
JOURNAL_FILE = "decisions.jsonl"
PATRON_ROLE = "200"
MERGE_LIST_COLUMNS = ("pair_id", "cluster_id", "from_primary_id", "from_name", "to_primary_id", "to_name", "reason",
                      "checks", "note", "reviewer", "decided_at")
# The fields shown side by side in review and kept for each record of the worklist.
DISPLAY_FIELDS = ("primary_id", "first_name", "middle_name", "last_name", "birth_date", "user_group", "account_type",
                  "external_id", "record_type", "status", "expiry_date", "purge_date", "email", "emails", "phone",
                  "identifiers", "line1", "city", "postal_code", "patron_type", "statistics", "roles", "loans",
                  "requests", "fees", "last_patron_activity_date")
_NUMBERS = ("loans", "requests", "fees")
_LINK_FIELDS = ("source_link_id", "linking_id", "source_institution_code")


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _key(primary_id: Any) -> str:
    """Alma compares primary ids ignoring case."""
    return _text(primary_id).casefold()


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _num(value: Any) -> float:
    if isinstance(value, Mapping):
        value = value.get("value")
    try:
        number = float(_text(value) or 0)
    except ValueError:
        return 0.0
    return 0.0 if math.isnan(number) else number


# -- records -----------------------------------------------------------------------------------------

def _record(row: Mapping[str, Any], *, source: str, in_extract: bool | None, roles_known: bool) -> dict[str, Any]:
    """A worklist record from a patron-table row (or a duplicates.csv row, with fewer fields)."""
    rec: dict[str, Any] = {name: _text(row.get(name)) for name in DISPLAY_FIELDS}
    for name in _NUMBERS:
        rec[name] = _num(row.get(name))
    rec["account_type"] = rec["account_type"].upper()
    rec["status"] = rec["status"].upper()
    linked: bool | None = None
    if any(name in row for name in _LINK_FIELDS):
        linked = any(_text(row.get(name)) for name in _LINK_FIELDS)
    rec.update(in_extract=in_extract, roles_known=roles_known, linked=linked, exists=True, source=source,
               checked_at="")
    return rec


def _missing(primary_id: str) -> dict[str, Any]:
    rec = _record({"primary_id": primary_id}, source="none", in_extract=None, roles_known=False)
    rec["exists"] = None
    return rec


def _roles(rec: Mapping[str, Any]) -> list[str]:
    return [r for r in str(rec.get("roles") or "").split(";") if r]


def _staff(rec: Mapping[str, Any]) -> bool:
    return any(r != PATRON_ROLE for r in _roles(rec))


def _sis_current(rec: Mapping[str, Any]) -> bool:
    return rec.get("account_type") == "EXTERNAL" and rec.get("in_extract") is not False


def _past_sis(rec: Mapping[str, Any]) -> bool:
    return rec.get("account_type") == "EXTERNAL" and rec.get("in_extract") is False


def _name(rec: Mapping[str, Any]) -> str:
    first, last = rec.get("first_name") or "", rec.get("last_name") or ""
    return f"{last}, {first}" if first and last else (last or first or "(no name)")


def survivor_rank(rec: Mapping[str, Any]) -> tuple:
    """The survivor-order key of a record: of two records, the one with the higher key is kept.

    Ties on the whole key go to the lower primary id (see :func:`choose_survivor`).
    """
    return (_sis_current(rec), _staff(rec), not _past_sis(rec), rec.get("expiry_date") or "",
            rec.get("last_patron_activity_date") or "", rec.get("loans", 0) + rec.get("requests", 0),
            rec.get("fees", 0), rec.get("status") == "ACTIVE")


def choose_survivor(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records in survivor order: the first is kept (TO), the others are merged into it."""
    ordered = sorted(records, key=lambda r: _key(r["primary_id"]))
    return sorted(ordered, key=survivor_rank, reverse=True)  # stable: ties keep the lower id first


def _why(to: Mapping[str, Any], frm: Mapping[str, Any]) -> str:
    """The survivor rule that puts ``to`` before ``frm``, in words."""
    t, f = to["primary_id"], frm["primary_id"]
    a, b = survivor_rank(to), survivor_rank(frm)
    if a[0] != b[0]:
        return (f"{t} is the SIS-managed record the current SIS extract still has: the SIS keeps updating it, "
                f"and if it were merged away the next SIS load would create it again.")
    if a[1] != b[1]:
        return (f"{t} holds a staff role ({', '.join(r for r in _roles(to) if r != PATRON_ROLE)}): staff keep one "
                f"account with both roles, and Alma refuses to merge away a record with any role but Patron.")
    if a[2] != b[2]:
        return (f"{t} is the account of the newer affiliation: {f} is an SIS record the current extract no longer "
                f"has (a past affiliation).")
    if a[3] != b[3]:
        return (f"{t} is the account of the newer affiliation: it expires later ({to['expiry_date']} against "
                f"{frm['expiry_date'] or 'no expiry date'}).")
    if a[4] != b[4]:
        return (f"{t} was active more recently ({to['last_patron_activity_date']} against "
                f"{frm['last_patron_activity_date'] or 'no activity'}).")
    if a[5] != b[5]:
        return f"{t} has more loans and requests ({a[5]:g} against {b[5]:g}), so less has to move."
    if a[6] != b[6]:
        return f"{t} carries more fees ({a[6]:.2f} against {b[6]:.2f}), so less has to move."
    if a[7] != b[7]:
        return f"{t} is active and {f} is not."
    return f"The two records are equal on every survivor rule; the one with the lower primary id ({t}) is kept."
