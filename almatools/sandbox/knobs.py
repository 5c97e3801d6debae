"""The sandbox's knobs (latency, faults, thresholds) and Alma's fixed texts, limits and protected fields."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

from almatools.models import user_to_xml_bytes

TOTAL_QUIRKS = ("exact", "overstate", "minus_one")
UNLIMITED_DAILY = 1_000_000
"""What ``X-Exl-Api-Remaining`` counts down from when no daily limit is set."""

# Alma's own wording, from the Users API documentation and real error bodies (the daily threshold's
# text was not found in public sources; that one is ours).
MSG_UNAUTHORIZED = "API-key not defined or not configured to allow this API."
# The gateway's reply to a call with no apikey at all (recorded: error_general_error_no_apikey.xml; the
# HTTP status was not recorded, 400 is ours).
MSG_NO_APIKEY = ("A Gateway error has occurred - Make sure you add an appropriate apikey as a parameter or a "
                 "header.")
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
        drop_accept: play a proxy that drops the ``Accept`` header: every reply (errors too) is then
            XML unless the query says ``format=json``, as Alma answers a request without ``Accept``.
        read_only: the key may read but not write, as a read-only Alma key: POST, PUT and DELETE are
            answered with the wrong key's UNAUTHORIZED (the reference's reading, §1; no recording of a
            read-only key's reply was found), except ``POST /users/{id}?op=auth|refresh``, which the
            Users OpenAPI spec allows a read-only key.
    """

    latency_ms: float = 0
    fault_rate: float = 0.0
    per_second: int = 0
    daily_limit: int = 0
    total_quirk: str = "exact"
    seed: int = 0
    commit_delay_ms: float = 0
    drop_accept: bool = False
    read_only: bool = False


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
