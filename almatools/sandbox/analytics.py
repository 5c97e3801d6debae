"""The sandbox's Analytics endpoint: one users report, served the way Alma serves reports.

``GET /almaws/v1/analytics/reports?path=…&limit=…&col_names=true`` answers with the first page, a
resumption token and the column headings; ``?token=…&limit=…`` answers with the next page, until
``IsFinished`` is true. Reading past the end is error 420033; an unknown path is HTTP 500
``INTERNAL_SERVER_ERROR`` "Path not found", as Alma does. Empty cells are left out of a row.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response

from almatools.sandbox.http import AlmaErrorReply, int_param, store_of, xml_response

__all__ = ["USERS_REPORT_PATH", "REPORT_COLUMNS", "analytics_report"]

USERS_REPORT_PATH = "/shared/Sandbox University/Reports/Users"
# (heading, how to read it from a full user record)
REPORT_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("Primary Identifier", lambda u: u.get("primary_id")),
    ("First Name", lambda u: u.get("first_name")),
    ("Middle Name", lambda u: u.get("middle_name")),
    ("Last Name", lambda u: u.get("last_name")),
    ("User Group Code", lambda u: _code(u.get("user_group"))),
    ("Account Type", lambda u: _code(u.get("account_type"))),
    ("External Id", lambda u: u.get("external_id")),
    ("Status", lambda u: _code(u.get("status"))),
    ("User Record Type", lambda u: _code(u.get("record_type"))),
    ("Expiry Date", lambda u: _date(u.get("expiry_date"))),
    ("Purge Date", lambda u: _date(u.get("purge_date"))),
    ("Birth Date", lambda u: _date(u.get("birth_date"))),
    ("Preferred Email", lambda u: _preferred(u, "email", "email_address")),
    ("Preferred Phone", lambda u: _preferred(u, "phone", "phone_number")),
)
_ROWSET = "urn:schemas-microsoft-com:xml-analysis:rowset"
_tokens: dict[str, int] = {}  # resumption token → offset of the next page
_lock = threading.Lock()


def _code(value: Any) -> str | None:
    return value.get("value") if isinstance(value, dict) else value


def _date(value: Any) -> str | None:
    return str(value)[:10] if value else None


def _preferred(user: dict[str, Any], kind: str, key: str) -> str | None:
    items = (user.get("contact_info") or {}).get(kind) or []
    chosen = next((i for i in items if i.get("preferred")), items[0] if items else None)
    return chosen.get(key) if chosen else None


def _schema() -> str:
    cells = ['<xsd:element name="Column0" type="xsd:string" minOccurs="0" saw-sql:type="integer" '
             'saw-sql:columnHeading="0"/>']
    cells += [f'<xsd:element name="Column{n}" type="xsd:string" minOccurs="0" saw-sql:type="varchar" '
              f'saw-sql:columnHeading="{escape(heading)}"/>' for n, (heading, _) in enumerate(REPORT_COLUMNS, 1)]
    return ('<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:saw-sql="urn:saw-sql" '
            f'targetNamespace="{_ROWSET}"><xsd:complexType name="Row"><xsd:sequence>{"".join(cells)}'
            '</xsd:sequence></xsd:complexType></xsd:schema>')


def _row(user: dict[str, Any]) -> str:
    cells = ["<Column0>0</Column0>"]
    for n, (_, read) in enumerate(REPORT_COLUMNS, 1):
        value = read(user)
        if value not in (None, ""):  # Alma leaves empty cells out
            cells.append(f"<Column{n}>{escape(str(value))}</Column{n}>")
    return "<Row>" + "".join(cells) + "</Row>"


async def analytics_report(request: Request) -> Response:
    """``GET /analytics/reports``: a page of the sandbox's users report (XML only, as Alma)."""
    params = request.query_params
    limit = int_param(request, "limit", 25)
    if not 25 <= limit <= 1000:
        raise AlmaErrorReply("402119", "General error: limit must be between 25 and 1000")
    token = params.get("token")
    first = not token
    if first:
        path = params.get("path", "")
        if path != USERS_REPORT_PATH:
            raise AlmaErrorReply("INTERNAL_SERVER_ERROR", f"Path not found ({path})", 500)
        token, offset = secrets.token_hex(16).upper(), 0
    else:
        with _lock:
            offset = _tokens.get(token, -1)
        if offset < 0:
            raise AlmaErrorReply("420033", "No more rows to fetch")
    total, users = store_of(request).query((), order_by="primary_id", limit=limit, offset=offset)
    finished = offset + len(users) >= total
    with _lock:
        if finished:
            _tokens.pop(token, None)
        else:
            _tokens[token] = offset + len(users)
    head = f"<ResumptionToken>{token}</ResumptionToken>" if first else ""
    schema = _schema() if first and params.get("col_names", "true").lower() != "false" else ""
    body = (f"<report><QueryResult>{head}<IsFinished>{str(finished).lower()}</IsFinished><ResultXml>"
            f'<rowset xmlns="{_ROWSET}">{schema}{"".join(_row(u) for u in users)}</rowset>'
            "</ResultXml></QueryResult></report>")
    return xml_response(body.encode("utf-8"))
