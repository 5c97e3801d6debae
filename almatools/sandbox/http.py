"""The sandbox's HTTP helpers: Alma's error replies, content negotiation, XML replies, query parameters.

Used by the Users API (:mod:`almatools.sandbox.app`) and the Analytics API
(:mod:`almatools.sandbox.analytics`), which import this module and never each other.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from lxml import etree
from lxml.builder import ElementMaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from almatools.sandbox.store import Store

__all__ = ["WSR_NS", "XML_DECLARATION", "AlmaErrorReply", "general_error", "int_param", "not_found", "reply",
           "store_of", "user_url", "wants_json", "xml_response"]

WSR_NS = "http://com/exlibris/urm/general/xmlbeans"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
_tracking = random.Random()  # tracking ids need not follow the fault seed


class AlmaErrorReply(Exception):
    """An error reply in Alma's ``web_service_result`` shape (raised inside the sandbox's routes, answered
    as Alma answers; it never reaches a client as an exception: the client raises :class:`almatools.errors.AlmaError`).

    Args:
        code: Alma's ``errorCode`` (always a string).
        message: Alma's ``errorMessage``.
        status: the HTTP status (400 for business errors, as Alma).
        tracked: whether the body carries a ``trackingId`` (Alma's threshold errors do not).
        wrapped: in JSON, use the wrapped shape of Alma's JSON reader (``{"web_service_result": …}``).
        xml_only: answer in XML even to a client that asked for JSON (Alma's gateway does so for
            UNAUTHORIZED).
    """

    def __init__(self, code: str, message: str, status: int = 400, *, tracked: bool = True, wrapped: bool = False,
                 xml_only: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status, self.tracked = code, message, status, tracked
        self.wrapped, self.xml_only = wrapped, xml_only

    def response(self, as_json: bool) -> Response:
        """This error as a reply, in JSON or XML."""
        error = {"errorCode": self.code, "errorMessage": self.message}
        if self.tracked:
            now = dt.datetime.now(dt.timezone.utc)
            letters = "".join(_tracking.choices(string.ascii_uppercase + string.digits, k=5))
            error["trackingId"] = f"E01-{now:%d%m%H%M%S}-{letters}-AWAE{_tracking.randrange(10**9):09d}"
        if as_json and self.wrapped:
            # Alma's JSON reader answers in another shape: wrapped, with ``error`` an object, no ``result``.
            wrapped = {"web_service_result": {"errorsExist": True, "errorList": {"error": error}}}
            return JSONResponse(wrapped, self.status)
        if as_json and not self.xml_only:
            body = {"errorsExist": True, "errorList": {"error": [error]}, "result": None}
            return JSONResponse(body, self.status)
        e = ElementMaker(namespace=WSR_NS, nsmap={None: WSR_NS})
        root = e.web_service_result(
            e.errorsExist("true"), e.errorList(e.error(*(getattr(e, key)(text) for key, text in error.items())))
        )
        return xml_response(etree.tostring(root), self.status)


def not_found(user_id: str, id_type: str) -> AlmaErrorReply:
    if id_type == "all_unique":
        return AlmaErrorReply("401861", f"User with identifier {user_id} was not found.")
    return AlmaErrorReply("401890", f"User with identifier {user_id} of type {id_type} was not found.")


def general_error(detail: str) -> AlmaErrorReply:
    # Alma documents 402119 'General error.' for bad list requests; the detail helps whoever reads it.
    return AlmaErrorReply("402119", f"General error: {detail}")


def wants_json(request: Request) -> bool:
    """Alma answers in XML unless ``format=json`` or an ``Accept`` header asks for JSON."""
    fmt = request.query_params.get("format", "").lower()
    if fmt in ("json", "xml"):
        return fmt == "json"
    return "application/json" in request.headers.get("accept", "").lower()


def xml_response(body: bytes, status: int = 200) -> Response:
    return Response(XML_DECLARATION + body, status, media_type="application/xml")


def reply(request: Request, payload: dict[str, Any], to_xml: Callable[[dict[str, Any]], bytes]) -> Response:
    if wants_json(request):
        return JSONResponse(payload)
    return xml_response(to_xml(payload))


def store_of(request: Request) -> Store:
    return request.app.state.store


def user_url(request: Request, primary_id: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/almaws/v1/users/{quote(primary_id, safe='')}"


def int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        raise general_error(f"{name} must be a number") from None


