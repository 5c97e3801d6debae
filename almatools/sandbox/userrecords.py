"""User records as the sandbox keeps them: completed like Alma completes a new user, validated as Alma
validates, updated as a PUT replaces (segments, contact lists, override fields).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from almatools.sandbox import codetables as ct
from almatools.sandbox.http import (
    AlmaErrorReply,
)
from almatools.sandbox.knobs import (
    _CONTACT_LISTS,
    _DATE,
    _GET_ONLY,
    _PROTECTED,
    _SEGMENT_LISTS,
    COMMON_PASSWORDS,
    MSG_NO_VALID_XML,
    MSG_PASSWORD,
)


def _is_empty(value: Any) -> bool:
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    return value in (None, "", [], {})


def _code_of(field: Any) -> str:
    return str((field.get("value") if isinstance(field, dict) else field) or "")


def _code_field(field: Any, table: str | None, default: dict[str, Any] | None = None) -> dict[str, Any]:
    """A code field in Alma's JSON shape, its ``desc`` taken from the code table when the code is known."""
    code = _code_of(field)
    if not code:
        return dict(default or {"value": "", "desc": ""})
    given = field.get("desc") if isinstance(field, dict) else None
    return {"value": code, "desc": (ct.describe(table, code) if table else "") or given or ""}


def _alma_date(value: Any) -> str:
    """A date as Alma writes it in JSON, ``YYYY-MM-DDZ``."""
    match = _DATE.match(str(value))
    try:
        day = dt.date.fromisoformat(match.group(1)) if match else None
    except ValueError:
        day = None
    if day is None:
        raise AlmaErrorReply("401676", MSG_NO_VALID_XML)
    return f"{day.isoformat()}Z"


def _now_stamp(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _blank_user(now: dt.datetime) -> dict[str, Any]:
    """Alma's defaults for fields a POST leaves out (a full GET shows every one of them)."""
    return {
        "record_type": {"value": "PUBLIC", "desc": "Public"},
        "primary_id": "", "first_name": "", "middle_name": "", "last_name": "", "full_name": "",
        "user_title": {"value": "", "desc": ""}, "job_category": {"value": "", "desc": ""}, "job_description": "",
        "gender": {"value": "", "desc": ""}, "user_group": {"value": "", "desc": ""},
        "campus_code": {"value": None, "desc": ""}, "web_site_url": "",
        "cataloger_level": {"value": "00", "desc": "[00] Default Level"},
        "preferred_language": {"value": "en", "desc": "English"},
        "account_type": {"value": "INTERNAL", "desc": "Internal"}, "external_id": "",
        "password": "", "force_password_change": "",
        "status": {"value": "ACTIVE", "desc": "Active"}, "status_date": f"{now.date().isoformat()}Z",
        "requests": None, "loans": None, "fees": None,
        "contact_info": {"address": [], "email": [], "phone": []},
        "pref_first_name": "", "pref_middle_name": "", "pref_last_name": "", "pref_name_suffix": "",
        "is_researcher": False, "researcher": None, "link": None,
        "user_identifier": [], "user_role": [], "user_block": [], "user_note": [], "user_statistic": [],
        "proxy_for_user": [],
    }


def _complete(body: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The full record Alma would store for a POST/PUT body: defaults, descriptions, dates, segments.

    Raises:
        AlmaErrorReply: 401676 for a date that is not a date.
    """
    blank = _blank_user(now)
    record = {**blank, **{key: value for key, value in copy.deepcopy(body).items() if value is not None}}
    # Output-only fields: the status date is Alma's, counts come from fulfillment, link only in lists.
    record.update(status_date=blank["status_date"], requests=None, loans=None, fees=None, link=None)
    for name, table in (
        ("record_type", "UserRecordTypes"), ("account_type", "UserUserType"), ("status", "ContentStructureStatus"),
        ("user_group", "UserGroups"), ("gender", "Genders"), ("preferred_language", "UserPreferredLanguage"),
        ("user_title", None), ("job_category", None), ("campus_code", None), ("cataloger_level", None),
    ):
        record[name] = _code_field(record.get(name), table, blank[name])
    for name in ("birth_date", "expiry_date", "purge_date"):
        if _is_empty(record.get(name)):
            record.pop(name, None)
        else:
            record[name] = _alma_date(record[name])
    record["full_name"] = " ".join(
        str(record[part]) for part in ("first_name", "middle_name", "last_name") if record.get(part)
    )
    # All segments of an INTERNAL user are internal; for an EXTERNAL one a blank or unknown type is External.
    internal_user = record["account_type"]["value"] == "INTERNAL"

    def segment(item: dict[str, Any]) -> dict[str, Any]:
        internal = internal_user or str(item.get("segment_type") or "").lower() == "internal"
        return {**item, "segment_type": "Internal" if internal else "External"}

    def types(item: dict[str, Any], key: str, table: str) -> list[dict[str, Any]]:
        return [_code_field(kind, table) for kind in item.get(key) or []]

    contact = dict(record.get("contact_info") or {})
    contact["address"] = [
        segment({
            "preferred": False, **address,
            **{key: _alma_date(address[key]) for key in ("start_date", "end_date") if not _is_empty(address.get(key))},
            "address_type": types(address, "address_type", "UserAddressTypes"),
        })
        for address in contact.get("address") or []
    ]
    contact["email"] = [
        segment({"description": None, "preferred": False, **email,
                 "email_type": types(email, "email_type", "UserEmailTypes")})
        for email in contact.get("email") or []
    ]
    contact["phone"] = [
        segment({"preferred": False, "preferred_sms": False, **phone,
                 "phone_type": types(phone, "phone_type", "UserPhoneTypes")})
        for phone in contact.get("phone") or []
    ]
    record["contact_info"] = contact
    stamp = _now_stamp(now)
    record["user_identifier"] = [
        segment({"note": "", "status": "ACTIVE", **item,
                 "id_type": _code_field(item.get("id_type"), "UserIdentifierTypes")})
        for item in record.get("user_identifier") or []
    ]
    record["user_note"] = [
        segment({"user_viewable": False, "popup_note": False, "created_by": "API", "created_date": stamp, **note,
                 "note_type": _code_field(note.get("note_type"), "NoteTypes")})
        for note in record.get("user_note") or []
    ]
    record["user_block"] = [
        segment({"block_status": "ACTIVE", "created_by": "API", "created_date": stamp, **block,
                 "block_type": _code_field(block.get("block_type"), "UserBlockTypes",
                                           {"value": "GENERAL", "desc": "General"})})
        for block in record.get("user_block") or []
    ]
    record["user_statistic"] = [
        segment({**{k: v for k, v in stat.items() if k != "category_type"}, **_statistic(stat)})
        for stat in record.get("user_statistic") or []
    ]
    return record


def _statistic(stat: dict[str, Any]) -> dict[str, Any]:
    # category_type is output-only and absent on real records (PUL's and SCR's recorded users): the
    # sandbox neither keeps one that was sent nor invents one.
    return {"statistic_category": _code_field(stat.get("statistic_category"), "UserStatisticalCategories")}


def _patron_role() -> dict[str, Any]:
    return {
        "status": {"value": "ACTIVE", "desc": "Active"},
        "scope": {"value": ct.INSTITUTION[0], "desc": ct.INSTITUTION[1]},
        "role_type": {"value": "200", "desc": "Patron"},
        "parameter": [],
    }


def _validate(record: dict[str, Any], *, new_external: bool = False) -> None:
    """Alma's checks on a completed record, in Alma's order of errors.

    Args:
        record: the completed record.
        new_external: the record becomes EXTERNAL with this write (a POST, or a PUT converting an
            INTERNAL user), so its ``external_id`` must name a configured SIS profile.

    Raises:
        AlmaErrorReply: 401857, 401853, 401854, 401864, 401852 or 500038.
    """
    account = record["account_type"]["value"]
    external_id = str(record.get("external_id") or "")
    if account not in ct.USER_ACCOUNT_TYPES:
        raise AlmaErrorReply("401857", "The given user account type is illegal (must be INTERNAL/EXTERNAL).")
    if account == "INTERNAL" and external_id:
        raise AlmaErrorReply("401853", "External Id must be empty for internal user.")
    if account == "EXTERNAL" and not external_id:
        raise AlmaErrorReply("401854", "External Id must be given for external user.")
    if account == "EXTERNAL" and new_external and external_id not in ct.SIS_PROFILES:
        # rest_user.xsd: external_id "must match a valid SIS profile". Alma's code and wording for a
        # wrong one are not public; the sandbox answers with 401854's code and says what to fix.
        raise AlmaErrorReply("401854", f"External Id {external_id} is not a valid SIS profile; use one of: "
                        f"{', '.join(sorted(ct.SIS_PROFILES))}.")
    record_type = record["record_type"]["value"]
    if record_type not in ct.USER_RECORD_TYPES:
        raise AlmaErrorReply("401864", f"Given record type ({record_type}) is invalid.")
    group = record["user_group"]["value"]
    if group and group not in ct.USER_GROUPS:
        raise AlmaErrorReply("401852", "Given user group is not legal.")
    password = str(record.get("password") or "")
    folded = password.casefold()
    if password and (len(password) < 8 or folded == str(record["primary_id"]).casefold() or folded in COMMON_PASSWORDS):
        raise AlmaErrorReply("500038", MSG_PASSWORD)


def _merge_segments(incoming: list[dict[str, Any]], existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PUT on an EXTERNAL user: incoming Internal segments replace the internal ones, incoming External
    segments the external ones; a kind that does not come in stays. An empty list deletes them all."""
    if not incoming:
        return []

    def kind(item: dict[str, Any]) -> str:  # a blank type on an EXTERNAL user means External
        return "Internal" if str(item.get("segment_type") or "").lower() == "internal" else "External"

    kinds = {kind(item) for item in incoming}
    return [*incoming, *(item for item in existing if kind(item) not in kinds)]


def _updated(existing: dict[str, Any], body: dict[str, Any], override: set[str], now: dt.datetime) -> dict[str, Any]:
    """The record after ``PUT`` of ``body`` on ``existing`` (swap-all, with Alma's exceptions).

    Raises:
        AlmaErrorReply: 401859 (EXTERNAL to INTERNAL), 401858 (external_id changed), or a validation error.
    """
    body = dict(body)
    for key in ("record_type", "primary_id", "account_type"):  # mandatory: an empty one keeps its value
        if _is_empty(body.get(key)):
            body[key] = existing.get(key)
    body.setdefault("external_id", existing.get("external_id"))
    was_external = _code_of(existing.get("account_type")) == "EXTERNAL"
    if was_external and _code_of(body["account_type"]) == "INTERNAL":
        raise AlmaErrorReply("401859", "Action currently not supported.")
    if was_external and str(body.get("external_id") or "") != str(existing.get("external_id") or ""):
        raise AlmaErrorReply(
            "401858", "The external id in DB does not fit the given value in xml - external id cannot be updated."
        )
    if was_external:
        for key in _PROTECTED:
            if key not in override and _is_empty(body.get(key)) and key in existing:
                body[key] = existing[key]
    record = _complete(body, now)
    _validate(record, new_external=not was_external)
    if was_external:
        for key in _SEGMENT_LISTS:
            record[key] = _merge_segments(record[key], existing.get(key) or [])
        old_contact = existing.get("contact_info") or {}
        for key in _CONTACT_LISTS:
            record["contact_info"][key] = _merge_segments(record["contact_info"][key], old_contact.get(key) or [])
    if not body.get("user_role"):  # no roles sent: the current ones stay
        record["user_role"] = existing.get("user_role") or []
    for key in _GET_ONLY:
        if key in existing:
            record[key] = existing[key]
    if record["status"]["value"] == _code_of(existing.get("status")) and existing.get("status_date"):
        record["status_date"] = existing["status_date"]
    return record
