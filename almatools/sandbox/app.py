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
- **No key at all**: ``GENERAL_ERROR`` "A Gateway error has occurred - Make sure you add an appropriate
  apikey as a parameter or a header.", in XML, without a trackingId (recorded reply
  ``error_general_error_no_apikey.xml``; its HTTP status was not recorded, 400 is ours).
- **A taken primary id** (401851): "User with identifier X of type Primary id already exists." (recorded
  reply ``error_401851_primary_id_kth.xml``); a taken identifier of another type keeps our wording.
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
  401851 when it posts again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
from typing import Any
from urllib.parse import unquote

from lxml import etree
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from almatools.models import RecordError, user_from_xml_bytes
from almatools.sandbox import codetables as ct
from almatools.sandbox.analytics import analytics_report
from almatools.sandbox.gateway import _Gate, _too_large
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
from almatools.sandbox.knobs import _BRIEF_DROP, _OVERRIDE_NAMES, MSG_NO_VALID_XML, Knobs, _plain_xml, _user_xml, _users_xml
from almatools.sandbox.store import ORDER_FIELDS, SEARCH_FIELDS, IdentifierTaken, Store
from almatools.sandbox.userrecords import _complete, _is_empty, _patron_role, _updated, _validate
from almatools.sandbox.validation import MAX_BODY_BYTES, BodyError, clean_user, dotted, java_chain

__all__ = ["create_app"]

log = logging.getLogger(__name__)

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
