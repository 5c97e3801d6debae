"""Reading Alma's error replies: JSON, XML, the JSON reader's wrapped shape and a gateway's HTML page, to
the fields of an :class:`~almatools.errors.AlmaError` (status, code, message, tracking id).
"""

from __future__ import annotations

import json
import re
from typing import Any

from lxml import etree

__all__ = ["alma_error_fields"]

_JAVA_CHAIN = re.compile(r'\["([^"]+)"\]|ArrayList\[(\d+)\]')
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_HEADING = re.compile(r"<h1[^>]*>(.*?)</h1>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def _first_error(body: Any) -> dict | None:
    """The first ``error`` of Alma's JSON error body, plain or wrapped.

    Alma sends two JSON shapes: ``{"errorsExist": true, "errorList": {"error": [{…}]}, "result": null}``
    and, from its JSON reader and some gateways, the same inside ``{"web_service_result": {…}}`` with
    ``error`` an object rather than a list.
    """
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("web_service_result"), dict):
        body = body["web_service_result"]
    errors = (body.get("errorList") or {}).get("error") if isinstance(body.get("errorList"), dict) else None
    if isinstance(errors, dict):
        errors = [errors]
    if isinstance(errors, list):
        return next((e for e in errors if isinstance(e, dict)), None)
    return None


def _xml_error(data: bytes) -> dict | None:
    """``errorCode``, ``errorMessage`` and ``trackingId`` of a ``web_service_result`` XML body (any namespace)."""
    try:
        # a parser per call: lxml parsers must not be shared between the fetch threads
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    for element in root.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname == "error":
            return {etree.QName(child).localname: (child.text or "") for child in element
                    if isinstance(child.tag, str)}
    return None


def _readable(code: str | None, message: str) -> str:
    """Alma's message made readable: a Java reader's reference chain becomes the field path it names."""
    message = " ".join(message.split())
    if "reference chain" in message:
        path = ""
        for name, index in _JAVA_CHAIN.findall(message.split("reference chain", 1)[1]):
            path += f"[{index}]" if index else (f".{name}" if path else name)
        cause = message.split("(through reference chain", 1)[0].strip(" ()") or "an unreadable value"
        if path:
            return f"Alma could not read the value of {path} in the record sent ({cause})"
    if not message:
        return f"Alma answered {code} without a message" if code else "Alma answered without a message"
    return message


def _gateway_page(status: int, reason: str | None, text: str) -> str:
    """A one-line description of an HTML error page (from a proxy or load balancer, not from Alma's API)."""
    found = _HTML_TITLE.search(text) or _HTML_HEADING.search(text)
    title = " ".join(_TAGS.sub(" ", found.group(1)).split())[:120] if found else ""
    what = title or f"{status} {reason or ''}".strip()
    return f"Alma's gateway answered with an error page ({what}) instead of an API reply"


def alma_error_fields(status: int, content_type: str, data: bytes, reason: str | None = None
                      ) -> tuple[str | None, str, str | None]:
    """(errorCode, message, trackingId) of an error reply, whatever its shape.

    Handles Alma's JSON error body, the wrapped ``web_service_result`` JSON (``error`` an object), the
    ``web_service_result`` XML (with or without namespace), a gateway's HTML page (502/503 from a proxy;
    its markup never becomes the message) and plain text.

    Args:
        status: the HTTP status.
        content_type: the reply's ``Content-Type``.
        data: the reply body.
        reason: the HTTP reason phrase.
    """
    text = data.decode("utf-8", "replace").strip()
    head = text[:200].lstrip().lower()
    error = None
    if text.startswith(("{", "[")):
        try:
            error = _first_error(json.loads(text))
        except ValueError:
            error = None
        else:
            if error is None:  # JSON, but not an Alma error body: never pass raw JSON on as the message
                return None, f"HTTP {status} {reason or ''}".strip() + " with a JSON reply that holds no Alma error", None
    elif head.startswith("<!doctype html") or head.startswith("<html") or "html" in content_type.lower():
        return None, _gateway_page(status, reason, text), None
    elif text.startswith("<"):
        error = _xml_error(data)
    if error is not None:
        code = error.get("errorCode")
        code = str(code).strip() if code not in (None, "") else None
        tracking = error.get("trackingId")
        tracking = str(tracking).strip() if tracking and str(tracking).strip().lower() != "unknown" else None
        return code, _readable(code, str(error.get("errorMessage") or "")), tracking
    if not text:
        return None, f"HTTP {status} {reason or ''} with no body".strip(), None
    first_line = " ".join(text.split())[:200]
    return None, first_line, None
