"""The sandbox's web app: Alma's Users API, as documented, over a local SQLite store.

A client cannot tell it from Alma except by URL: paths under ``/almaws/v1``, the key as ``apikey=`` or
``Authorization: apikey …``, XML unless JSON is asked for (``format=json`` or ``Accept``), business
errors as HTTP 400 with Alma's ``web_service_result`` body and codes, 429 for the thresholds, and
``X-Exl-Api-Remaining`` on every reply. The facts come from the reference (alma-api.md §2–§5).

Two layers:

- ``_Gate``, a plain ASGI wrapper, plays Alma's API gateway: latency, the per-second and daily
  thresholds, the key check, injected faults, and the reply headers. Injected faults are half HTTP
  500/503 before any processing and half dropped connections, which happen before or after the
  request took effect (50/50), so a client sees the "ambiguous write" it must survive in production.
- Starlette routes play the Users service: list/search, get, create, update (swap-all with Alma's
  rules for external users), delete, authenticate, and the code tables.

Besides Alma's API there is one helper of our own, ``POST /sandbox/merge`` (see ``merge_users``).

How strictly it answers, and the source of each behaviour (recorded replies are in
``tests/fixtures/alma``, listed with their sources in its README; "ours" marks a choice where Alma's
exact reply is not public):

- **Wrong key**: HTTP 400 ``UNAUTHORIZED`` "API-key not defined or not configured to allow this API.",
  always in XML and without a trackingId, even when JSON was asked for (recorded replies of public
  clients' fixtures, ``error_unauthorized.xml``; reference §1).
- **A JSON value of the wrong type** (``{"primary_id": {"a": 1}}``, an email address sent as a list,
  a list of strings where objects belong, a date that is not a date, NaN): HTTP 400 with the *wrapped*
  body ``{"web_service_result": {"errorsExist": true, "errorList": {"error": {…}}}}`` (``error`` an
  object), code ``BAD_REQUEST``, and a Java reader message naming the field's reference chain
  (recorded reply ``error_wrapped_bad_request.json``). The same fault in an XML body is 401676.
- **A body that is not a user object** (not JSON/XML, a JSON array, the wrong root): 401676 "No valid
  XML was given." (reference §5).
- **A value the sandbox could not serve back** (text over 255 characters in ids and names, per
  rest_user.xsd; over 4,000 in free text and over 1,000 list entries, ours; NUL and other characters XML
  1.0 cannot carry, lone surrogates): 401676 naming the field (ours). Nothing is stored, so list pages
  and the XML GET never fail on a stored record; every record is also written to XML once before it
  is stored, as a last guard.
- **A body over 1 MB** (ours: Alma's limit is not public): HTTP 413 ``REQUEST_TOO_LARGE``, refused from
  ``Content-Length`` before the body is read, or while a chunked body is read.
- **Unknown fields** are dropped (Alma's JSON reader ignores unknown properties); ``category_type`` of a
  statistic is output-only (rest_user.xsd) and usually absent on real records (PUL's and SCR's recorded
  users): it is neither kept nor invented.
- **EXTERNAL users** need an ``external_id`` that is a configured SIS profile
  (``codetables.SIS_PROFILES``; rest_user.xsd: "must match a valid SIS profile"), on POST and when a PUT
  converts an INTERNAL user; the code (401854) and wording are ours.
- **Slow commits** (``Knobs.commit_delay_ms``): a POST's checks, 401851 included, run at once; the
  record is stored after the delay, so a client that timed out can look it up, find nobody, and get
  401851 when it posts again (issue 10).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hmac
import json
import logging
import random
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from lxml import etree
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from almatools.models import RecordError, user_from_xml_bytes, user_to_xml_bytes
from almatools.sandbox import codetables as ct
from almatools.sandbox.analytics import analytics_report
from almatools.sandbox.http import (
    AlmaErrorReply,
    general_error,
    int_param,
    not_found,
    reply,
    store_of,
    user_url,
    wants_json,
)
from almatools.sandbox.store import ORDER_FIELDS, SEARCH_FIELDS, IdentifierTaken, Store
from almatools.sandbox.validation import MAX_BODY_BYTES, BodyError, clean_user, dotted, java_chain

__all__ = ["AlmaErrorReply", "Knobs", "TOTAL_QUIRKS", "create_app"]

log = logging.getLogger(__name__)

TOTAL_QUIRKS = ("exact", "overstate", "minus_one")
UNLIMITED_DAILY = 1_000_000
"""What ``X-Exl-Api-Remaining`` counts down from when no daily limit is set."""

# Alma's own wording, from the Users API documentation and real error bodies (the daily threshold's
# text was not found in public sources; that one is ours).
MSG_UNAUTHORIZED = "API-key not defined or not configured to allow this API."
MSG_PER_SECOND = "HTTP requests are more than allowed per second"
MSG_DAILY = "Daily API request threshold has been reached"
MSG_NO_VALID_XML = "No valid XML was given."
MSG_PASSWORD = (
    "New password must be at least 8 characters long and must not include the user-name or any "
    "commonly used password."
)

COMMON_PASSWORDS = frozenset({
    "password", "password1", "password123", "12345678", "123456789", "1234567890", "11111111", "00000000",
    "qwertyui", "qwerty123", "iloveyou", "letmein1", "welcome1", "abcdefgh", "abc12345", "sunshine",
    "football", "baseball", "princess", "trustno1", "admin123", "changeme", "passw0rd", "library1",
})

# Fields that PUT leaves alone on an EXTERNAL user when they arrive empty, unless named in override=.
_PROTECTED = (
    "user_group", "job_category", "preferred_language", "campus_code", "rs_library", "user_title",
    "library_notice", "pref_first_name", "pref_middle_name", "pref_last_name", "cataloger_level",
)
_OVERRIDE_NAMES = {"rs_libraries": "rs_library", "library_notices": "library_notice"}  # docs name -> JSON key
_SEGMENT_LISTS = ("user_identifier", "user_note", "user_block", "user_statistic")
_CONTACT_LISTS = ("address", "email", "phone")
_GET_ONLY = ("last_patron_activity_date", "proxy_for_user", "linking_id", "source_link_id", "source_institution_code")
_BRIEF_DROP = ("user_role", "user_block", "user_note", "proxy_for_user", "rs_library", "library_notice")
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:\d{2}|T.*)?$")



@dataclass
class Knobs:
    """Fault and limit settings; read on every request, so they can be changed while the server runs.

    Attributes:
        latency_ms: delay before every ``/almaws`` reply.
        fault_rate: probability that a request fails (see the module docstring).
        per_second: requests allowed in each fixed one-second window; 0 means no limit.
        daily_limit: requests allowed per UTC day, counted in the store; 0 means no limit.
        total_quirk: ``total_record_count`` of ``GET /users``: ``exact``, ``overstate`` (5 too many,
            as Alma sometimes reports) or ``minus_one`` (-1, as Alma returns for some queries).
        seed: seed of the fault dice, for repeatable runs.
        commit_delay_ms: ``POST /users`` checks the record (including 401851), then waits this long
            before the record is stored: a slow commit, whose reply a client may give up on while a
            look-up still finds nobody.
    """

    latency_ms: float = 0
    fault_rate: float = 0.0
    per_second: int = 0
    daily_limit: int = 0
    total_quirk: str = "exact"
    seed: int = 0
    commit_delay_ms: float = 0


def _user_xml(user: dict[str, Any]) -> bytes:
    return user_to_xml_bytes(user, xml_declaration=False)


def _users_xml(page: dict[str, Any]) -> bytes:
    users = b"".join(_user_xml(user) for user in page.get("user", []))
    return f'<users total_record_count="{page["total_record_count"]}">'.encode() + users + b"</users>"


def _plain_xml(tag: str, value: Any) -> etree._Element:
    """A small JSON-to-XML mapping for code tables: {"value", "desc"} pairs become ``<tag desc>``, a
    list becomes a plural wrapper of singular items (``row`` -> ``<rows><row>``)."""
    if isinstance(value, dict) and set(value) == {"value", "desc"}:
        element = etree.Element(tag, desc=value["desc"] or "")
        element.text = value["value"] or ""
    elif isinstance(value, dict):
        element = etree.Element(tag)
        element.extend(_plain_xml(key, item) for key, item in value.items())
    elif isinstance(value, list):
        element = etree.Element(tag + "s")
        element.extend(_plain_xml(tag, item) for item in value)
    else:
        element = etree.Element(tag)
        element.text = str(value).lower() if isinstance(value, bool) else str(value)
    return element


# -- the gateway ---------------------------------------------------------------------------------


async def _discard(message: Message) -> None:
    """A ``send`` that throws the reply away (the request took effect; the client never hears)."""


async def _break_connection(send: Send) -> None:
    """Start a reply that promises more bytes than it sends, then stop.

    uvicorn closes the socket when an app ends a reply early, so the client reads a truncated body:
    ``requests`` raises ``ChunkedEncodingError`` (a dropped connection, as a flaky network gives).
    uvicorn logs "ASGI callable returned without completing response." for it; that is expected.
    """
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
    })
    await send({"type": "http.response.body", "body": b'{"user":', "more_body": True})


class _Gate:
    """What Alma's API gateway does before a request reaches the Users service.

    Order: latency, the thresholds (which count the call), the key check, injected faults, then the
    app. Every reply gets ``X-Exl-Api-Remaining`` and ``X-Request-ID``.
    """

    def __init__(self, app: ASGIApp, *, store: Store, api_key: str, knobs: Knobs) -> None:
        self.app, self.store, self.knobs = app, store, knobs
        self._key = api_key.encode()
        self._dice = random.Random(knobs.seed)
        self._second, self._calls_this_second = -1, 0

    def _daily_key(self) -> str:
        return f"api_calls:{dt.datetime.now(dt.timezone.utc).date().isoformat()}"

    def _remaining(self, used: int) -> int:
        return max(0, (self.knobs.daily_limit or UNLIMITED_DAILY) - used)

    def _meter(self) -> tuple[AlmaErrorReply | None, int]:
        """Count one call against the thresholds: (the threshold error or None, calls left today)."""
        second = int(time.time())  # Alma's per-second threshold works in fixed one-second windows
        if second != self._second:
            self._second, self._calls_this_second = second, 0
        self._calls_this_second += 1
        used = int(self.store.meta_get(self._daily_key()) or 0)
        if self.knobs.per_second and self._calls_this_second > self.knobs.per_second:
            return AlmaErrorReply("PER_SECOND_THRESHOLD", MSG_PER_SECOND, 429, tracked=False), self._remaining(used)
        if self.knobs.daily_limit and used >= self.knobs.daily_limit:
            return AlmaErrorReply("DAILY_THRESHOLD", MSG_DAILY, 429), 0
        return None, self._remaining(self.store.bump(self._daily_key()))

    def _authorised(self, request: Request) -> bool:
        given = request.query_params.get("apikey")
        if given is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            given = token.strip() if scheme.lower() == "apikey" else ""
        return hmac.compare_digest(given.encode(), self._key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        as_json = wants_json(request)
        alma = scope["path"].startswith("/almaws/")
        if alma and self.knobs.latency_ms > 0:
            await asyncio.sleep(self.knobs.latency_ms / 1000)
        if alma:
            error, remaining = self._meter()
        else:
            error, remaining = None, self._remaining(int(self.store.meta_get(self._daily_key()) or 0))
        headers = [(b"x-exl-api-remaining", str(remaining).encode()), (b"x-request-id", uuid.uuid4().hex.encode())]

        started = False

        async def send_marked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        if error is None and not self._authorised(request):
            error = AlmaErrorReply("UNAUTHORIZED", MSG_UNAUTHORIZED, tracked=False, xml_only=True)
        if error is None and alma and _declared_length(scope) > MAX_BODY_BYTES:
            error = _too_large()
        if error is None and alma and self.knobs.fault_rate > 0 and self._dice.random() < self.knobs.fault_rate:
            if self._dice.random() < 0.5:
                error = AlmaErrorReply("INTERNAL_SERVER_ERROR", "Internal server error.", self._dice.choice((500, 503)))
            else:
                applied = self._dice.random() < 0.5
                log.info("fault: dropping the connection of %s %s (%s)", scope["method"], scope["path"],
                         "after applying it" if applied else "before applying it")
                if applied:
                    await self.app(scope, receive, _discard)
                await _break_connection(send_marked)
                return
        if error is None:
            try:
                await self.app(scope, receive, send_marked)
                return
            except ClientDisconnect:  # the client gave up (e.g. its read timeout) while the body was read
                log.info("client went away during %s %s", scope["method"], scope["path"])
                return
            except Exception:  # a sandbox bug: still answer as Alma would, with the headers
                log.exception("the sandbox failed on %s %s", scope["method"], scope["path"])
                if started:
                    raise
                error = AlmaErrorReply("INTERNAL_SERVER_ERROR", "Internal server error.", 500)
        await error.response(as_json)(scope, receive, send_marked)


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _too_large() -> AlmaErrorReply:
    # Our own bound and code: Alma's size limit and its reply to an oversized body are not public.
    return AlmaErrorReply("REQUEST_TOO_LARGE", f"The request body is larger than {MAX_BODY_BYTES:,} bytes.", 413)


# -- user records ----------------------------------------------------------------------------------


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


# -- routes ---------------------------------------------------------------------------------------


def _parse_q(q: str) -> list[tuple[str, str]] | None:
    """Alma's ``q``: ``field~words`` clauses joined by `` AND ``; None for a query Alma cannot run
    (the same field twice, or ``ALL`` with AND), which it answers with a count of -1.

    Raises:
        AlmaErrorReply: 402119 for a clause without ``~`` or an unknown field.
    """
    clauses: list[tuple[str, str]] = []
    for clause in q.split(" AND "):
        name, tilde, value = clause.partition("~")
        name = name.strip()
        name = "ALL" if name.upper() == "ALL" else name.lower()
        if not tilde or name not in (*SEARCH_FIELDS, "general_info", "ALL"):
            raise general_error(f"cannot search {clause!r}")
        clauses.append((name, value))
    names = [name for name, _ in clauses]
    if len(set(names)) < len(names) or ("ALL" in names and len(names) > 1):
        return None
    return clauses


async def list_users(request: Request) -> Response:
    """``GET /users``: a page of brief (or, with ``expand=full``, full) records."""
    params = request.query_params
    limit, offset = int_param(request, "limit", 10), int_param(request, "offset", 0)
    if not 0 <= limit <= 100:
        raise general_error("limit must be between 0 and 100")
    if offset < 0:
        raise general_error("offset must not be negative")
    order_by = params.get("order_by") or "last_name"
    if order_by not in ORDER_FIELDS:
        raise general_error(f"cannot order by {order_by}")
    q, modified_from = params.get("q", "").strip(), params.get("modify_date_from", "").strip()
    if q and modified_from:
        raise general_error("q and modify_date_from cannot be used together")
    if modified_from and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", modified_from):
        raise general_error("modify_date_from must be yyyy-MM-dd")
    clauses = _parse_q(q) if q else []
    if clauses is None:
        return reply(request, {"total_record_count": -1}, _users_xml)
    total, records = store_of(request).query(
        clauses, order_by=order_by, limit=limit, offset=offset, modified_from=modified_from or None
    )
    full = params.get("expand") == "full"
    entries = []
    for record in records:
        link = user_url(request, record["primary_id"])
        if full:
            entries.append({**record, "link": link})
        else:
            entries.append({
                "primary_id": record["primary_id"], "first_name": record.get("first_name", ""),
                "last_name": record.get("last_name", ""), "gender": record.get("gender"),
                "status": record.get("status"), "password": "", "requests": None, "loans": None, "fees": None,
                "link": link,
            })
    quirk = request.app.state.knobs.total_quirk
    if quirk == "overstate" and total:
        total += 5
    elif quirk == "minus_one":
        total = -1
    page: dict[str, Any] = {"total_record_count": total}
    if entries:  # Alma leaves the key out when nothing matched
        page["user"] = entries
    return reply(request, page, _users_xml)


def _lookup(request: Request) -> dict[str, Any]:
    user_id = request.path_params["user_id"]
    id_type = request.query_params.get("user_id_type") or "all_unique"
    record = store_of(request).get(user_id, id_type)
    if record is None:
        raise not_found(user_id, id_type)
    return record


async def _body(request: Request) -> bytes:
    """The request body, read in pieces and refused once it passes MAX_BODY_BYTES (also when chunked)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_user(request: Request) -> dict[str, Any]:
    """The user object of a request body: JSON or XML by ``Content-Type`` (XML by default, as Alma),
    checked field by field (see :mod:`almatools.sandbox.validation`).

    Raises:
        AlmaErrorReply: 401676 for a body that is not a user object or holds a value the sandbox could not
            serve back; for JSON, a wrapped BAD_REQUEST naming the field whose value has the wrong type.
    """
    raw = await _body(request)
    is_json = "json" in request.headers.get("content-type", "").lower()
    try:
        data = json.loads(raw) if is_json else user_from_xml_bytes(raw)
    except (ValueError, RecordError, RecursionError):  # JSONDecodeError and RecordError are ValueErrors too
        data = None
    if not isinstance(data, dict):
        raise AlmaErrorReply("401676", MSG_NO_VALID_XML)
    try:
        return clean_user(data)
    except BodyError as err:
        if err.kind == "type" and is_json:
            raise AlmaErrorReply("BAD_REQUEST", f"\n(was java.lang.IllegalArgumentException) (through reference chain: "
                            f"{java_chain(err.path)})", wrapped=True) from err
        if err.kind == "type":
            raise AlmaErrorReply("401676", MSG_NO_VALID_XML) from err
        raise AlmaErrorReply("401676", f"Field {dotted(err.path)} {err.detail}.") from err


def _servable(record: dict[str, Any]) -> None:
    """Refuse a record the sandbox could not serve back in XML or JSON (never store it)."""
    try:
        _user_xml(record)
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except (ValueError, TypeError, RecordError) as err:
        raise AlmaErrorReply("401676", f"{MSG_NO_VALID_XML} ({err})") from err


async def get_user(request: Request) -> Response:
    """``GET /users/{id}``: the full (or ``view=brief``) record, with counts for ``expand``."""
    record = _lookup(request)
    if request.query_params.get("view") == "brief":
        record = {key: value for key, value in record.items() if key not in _BRIEF_DROP}
        record["contact_info"] = {"email": (record.get("contact_info") or {}).get("email", [])}
    expand = set(request.query_params.get("expand", "").split(","))
    if expand & {"loans", "requests", "fees"}:
        counts = store_of(request).fulfillment(record["primary_id"])
        url = user_url(request, record["primary_id"])
        for name in expand & set(counts):
            record[name] = {"value": counts[name], "link": f"{url}/{name}"}
    return reply(request, record, _user_xml)


async def create_user(request: Request) -> Response:
    """``POST /users``: validate, fill in Alma's defaults, store; 200 with the full record."""
    body = await _read_user(request)
    for name in ("record_type", "primary_id", "account_type"):
        if _is_empty(body.get(name)):
            raise AlmaErrorReply("401664", f"Mandatory field is missing: {name}")
    record = _complete(body, dt.datetime.now(dt.timezone.utc))
    _validate(record, new_external=True)
    if not record["user_role"] and record["record_type"]["value"] != "CONTACT":
        record["user_role"] = [_patron_role()]  # Alma's role assignment rules give every patron this one
    _servable(record)
    store = store_of(request)
    delay = request.app.state.knobs.commit_delay_ms
    if delay > 0:
        # A slow commit: the checks pass now, the record appears only after the delay (see Knobs).
        taken = store.taken(record)
        if taken is not None:
            raise AlmaErrorReply("401851", str(taken))
        await asyncio.sleep(delay / 1000)
    try:
        stored = store.add(record)
    except IdentifierTaken as err:
        raise AlmaErrorReply("401851", str(err)) from err
    log.info("created user %s", stored["primary_id"])
    return reply(request, stored, _user_xml)


async def update_user(request: Request) -> Response:
    """``PUT /users/{id}``: swap-all update; 200 with the full record."""
    existing = _lookup(request)
    body = await _read_user(request)
    override = {
        _OVERRIDE_NAMES.get(name.strip(), name.strip())
        for name in request.query_params.get("override", "").split(",")
    }
    record = _updated(existing, body, override, dt.datetime.now(dt.timezone.utc))
    _servable(record)
    try:
        stored = store_of(request).replace(existing["primary_id"], record)
    except IdentifierTaken as err:
        raise AlmaErrorReply("401851", str(err)) from err
    return reply(request, stored, _user_xml)


async def delete_user(request: Request) -> Response:
    """``DELETE /users/{id}``: 204 with no body."""
    store_of(request).delete(_lookup(request)["primary_id"])
    return Response(status_code=204)


async def user_operation(request: Request) -> Response:
    """``POST /users/{id}?op=auth``: 204 when the password (header ``Exl-User-Pw`` or parameter
    ``password``) is right, else 401866. Other operations (``refresh``) need linked accounts, which
    the sandbox does not have."""
    if request.query_params.get("op", "auth") != "auth":
        raise AlmaErrorReply("401859", "Action currently not supported.")
    record = _lookup(request)
    header = request.headers.get("exl-user-pw")
    password = unquote(header) if header is not None else request.query_params.get("password", "")
    if not (password and store_of(request).check_password(record["primary_id"], password)):
        raise AlmaErrorReply("401866", "User authentication failed")
    return Response(status_code=204)


async def test_operation(request: Request) -> Response:
    """``GET``/``POST /users/operation/test``: Alma's check that a key works (and may write)."""
    return reply(request, {}, lambda _: b"<test/>")


async def code_table(request: Request) -> Response:
    """``GET /conf/code-tables/{name}``."""
    table = ct.code_table_json(request.path_params["name"])
    if table is None:
        raise AlmaErrorReply("402119", f"General error: no code table named {request.path_params['name']}")
    return reply(request, table, lambda body: etree.tostring(_plain_xml("code_table", body)))


async def merge_users(request: Request) -> Response:
    """``POST /sandbox/merge?from=X&to=Y``: merge user X into user Y; 204.

    Our own design, not Alma's: Alma has no merge API, only the Merge Users screen. This lets tests and
    demos play out what staff do there once a merge worklist is approved (see Store.merge). It needs
    the key like every other call, but is not metered.
    """
    source, target = request.query_params.get("from", ""), request.query_params.get("to", "")
    try:
        store_of(request).merge(source, target)
    except KeyError as err:
        raise not_found(str(err.args[0]), "all_unique") from err
    except ValueError as err:
        raise AlmaErrorReply("401859", "Action currently not supported.") from err
    return Response(status_code=204)


async def _alma_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AlmaErrorReply)
    return exc.response(wants_json(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    # No such path or method: answer in Alma's error shape, keeping the HTTP status.
    return AlmaErrorReply("402119", f"General error: {exc.detail}", exc.status_code).response(wants_json(request))


def create_app(store: Store, *, api_key: str, knobs: Knobs) -> Starlette:

    """The sandbox's ASGI app.

    Args:
        store: where the users live.
        api_key: the one key the sandbox accepts.
        knobs: fault and limit settings, read on every request.
    """
    base = "/almaws/v1"
    app = Starlette(
        routes=[
            Route(f"{base}/users", list_users, methods=["GET"]),
            Route(f"{base}/users", create_user, methods=["POST"]),
            Route(f"{base}/users/operation/test", test_operation, methods=["GET", "POST"]),
            Route(f"{base}/users/{{user_id:path}}", get_user, methods=["GET"]),
            Route(f"{base}/users/{{user_id:path}}", update_user, methods=["PUT"]),
            Route(f"{base}/users/{{user_id:path}}", delete_user, methods=["DELETE"]),
            Route(f"{base}/users/{{user_id:path}}", user_operation, methods=["POST"]),
            Route(f"{base}/conf/code-tables/{{name}}", code_table, methods=["GET"]),
            Route(f"{base}/analytics/reports", analytics_report, methods=["GET"]),
            Route("/sandbox/merge", merge_users, methods=["POST"]),
        ],
        exception_handlers={AlmaErrorReply: _alma_error, HTTPException: _http_error},
    )
    app.state.store, app.state.knobs = store, knobs
    app.add_middleware(_Gate, store=store, api_key=api_key, knobs=knobs)
    return app
