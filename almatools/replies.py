"""Reading Alma's error replies: JSON, XML, the JSON reader's wrapped shape and a gateway's HTML page, to
the fields of an :class:`~almatools.errors.AlmaError` (status, code, message, tracking id).
"""

from __future__ import annotations

import json
import re
from typing import Any

from lxml import etree

__all__ = ["alma_error_fields", "json_of_xml_reply", "not_json_message"]

_JAVA_CHAIN = re.compile(r'\["([^"]+)"\]|ArrayList\[(\d+)\]')
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_HEADING = re.compile(r"<h1[^>]*>(.*?)</h1>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
_TRACKING_IN_MESSAGE = re.compile(r"\(\s*Tracking ID:\s*([^()\s]+)\s*\)", re.IGNORECASE)


def _json_errors(body: Any) -> list[dict] | None:
    """The ``error`` entries of Alma's JSON error body, plain or wrapped (None when it is not one).

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
        return [e for e in errors if isinstance(e, dict)] or None
    return None


# An error's fields by lower-case name: a reply quoted in a public client (tests/fixtures/alma,
# error_401851_primary_id_kth.xml) has its tags in lower case (<errorcode>), so names are matched
# without regard to case.
_XML_FIELDS = {"errorcode": "errorCode", "errormessage": "errorMessage", "trackingid": "trackingId"}


def _xml_errors(data: bytes) -> list[dict] | None:
    """``errorCode``, ``errorMessage`` and ``trackingId`` of each error of a ``web_service_result`` XML body
    (any namespace, tag names in any case); None when the body is not XML or holds no error."""
    try:
        # a parser per call: lxml parsers must not be shared between the fetch threads
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    errors = []
    for element in root.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname.lower() == "error":
            fields = {}
            for child in element:
                if isinstance(child.tag, str):
                    name = etree.QName(child).localname
                    fields[_XML_FIELDS.get(name.lower(), name)] = child.text or ""
            errors.append(fields)
    return errors or None


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
    ``web_service_result`` XML (with or without namespace, tag names in any case), a gateway's HTML page
    (502/503 from a proxy; its markup never becomes the message) and plain text. When ``errorList`` holds
    several errors, the first gives the code and every other one is added to the message; a tracking id
    that older replies put inside the message ("(Tracking ID: …)") is taken out of it.

    Args:
        status: the HTTP status.
        content_type: the reply's ``Content-Type``.
        data: the reply body.
        reason: the HTTP reason phrase.
    """
    text = data.decode("utf-8", "replace").strip()
    head = text[:200].lstrip().lower()
    errors = None
    if text.startswith(("{", "[")):
        try:
            errors = _json_errors(json.loads(text))
        except ValueError:
            errors = None
        else:
            if errors is None:  # JSON, but not an Alma error body: never pass raw JSON on as the message
                return None, f"HTTP {status} {reason or ''}".strip() + " with a JSON reply that holds no Alma error", None
    elif head.startswith("<!doctype html") or head.startswith("<html") or "html" in content_type.lower():
        return None, _gateway_page(status, reason, text), None
    elif text.startswith("<"):
        errors = _xml_errors(data)
    if errors:
        return _combined(errors)
    if not text:
        return None, f"HTTP {status} {reason or ''} with no body".strip(), None
    first_line = " ".join(text.split())[:200]
    return None, first_line, None


def _fields(error: dict) -> tuple[str | None, str, str | None]:
    """(code, readable message, tracking id) of one ``error`` entry."""
    code = error.get("errorCode")
    code = str(code).strip() if code not in (None, "") else None
    tracking = error.get("trackingId")
    tracking = str(tracking).strip() if tracking and str(tracking).strip().lower() != "unknown" else None
    message = str(error.get("errorMessage") or "")
    # Older replies carry the tracking id inside the message, after a line break:
    # "User with identifier … already exists.\n(Tracking ID: E02-…)" (error_401851_primary_id_kth.xml).
    found = _TRACKING_IN_MESSAGE.search(message)
    if found:
        tracking = tracking or found.group(1)
        message = message[:found.start()] + message[found.end():]
    return code, _readable(code, message), tracking


def _combined(errors: list[dict]) -> tuple[str | None, str, str | None]:
    """One (code, message, tracking id) for all errors of a reply: ``errorList`` may hold several, and
    each says something to fix. The first gives the code (and so the exception class); the others are
    added to the message, so no error of the reply is lost."""
    fields = [_fields(error) for error in errors]
    code, message, tracking = fields[0]
    others = dict.fromkeys(f"{text} ({other})" if other and other != code else text
                           for other, text, _ in fields[1:] if (other, text) != (code, message))
    if others:
        message = f"{message}; also: {'; '.join(others)}"
    tracking = tracking or next((t for _, _, t in fields if t), None)
    return code, message, tracking


def json_of_xml_reply(data: bytes) -> dict | None:
    """A user (``<user>``), a page of users (``<users total_record_count="N">``) or a code table that came
    as XML where JSON was asked, in the JSON form Alma gives (the reference's XML ↔ JSON mapping, as the
    models read it).

    Alma answers in XML unless JSON is asked for, and a proxy or gateway that drops or rewrites the
    ``Accept`` header makes it do so; the XML carries the same record (a user in Alma's XML form:
    tests/fixtures/alma/user_sample_xml_tul_johns.xml). None for any other body, or a record the models
    cannot read.
    """
    from almatools.models import RecordError, user_from_xml

    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    try:
        if root.tag == "user":
            return user_from_xml(root)
        if root.tag == "code_table":
            return _code_table_of_xml(root)
        if root.tag == "users":
            users = [user_from_xml(child) for child in root if child.tag == "user"]
            total = (root.get("total_record_count") or "").strip()
            body: dict[str, Any] = {"total_record_count": int(total) if total.lstrip("-").isdigit() else len(users)}
            if users:  # as in Alma's JSON: no "user" key on an empty page
                body["user"] = users
            return body
    except RecordError:
        return None
    return None


def _code_table_of_xml(root: etree._Element) -> dict[str, Any]:
    """A ``<code_table>`` as Alma's JSON gives it: ``name``, ``description`` and ``row`` (each row's
    ``default``/``enabled`` as booleans); rows inside a ``<rows>`` wrapper or straight under the root."""
    def text(element: etree._Element | None) -> str:
        return (element.text or "").strip() if element is not None else ""

    rows = []
    for row in root.iter("row"):
        entry: dict[str, Any] = {}
        for child in row:
            if isinstance(child.tag, str):
                value = text(child)
                entry[child.tag] = value.lower() == "true" if child.tag in ("default", "enabled") else value
        rows.append(entry)
    return {"name": text(root.find("name")), "description": text(root.find("description")), "row": rows}


def not_json_message(status: int, content_type: str, data: bytes, reason: str | None = None) -> str:
    """What a successful reply that is not JSON was, in words (never its markup)."""
    text = data.decode("utf-8", "replace").strip()
    head = text[:200].lower()
    if head.startswith(("<!doctype html", "<html")) or "html" in content_type.lower():
        return _gateway_page(status, reason, text)
    kind = content_type.split(";")[0].strip() or "no content type"
    return (f"Alma's reply was not JSON ({kind}, {len(data):,} bytes); check that nothing between this machine "
            f"and Alma (a proxy, a wrong ALMA_BASE_URL) answers in its place")
