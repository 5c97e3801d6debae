"""HTML the registration panels show: status boxes, the record created, the accounts found, the changes an
update would make. Pure functions of the kit's results (no widgets), shared by the form and the bulk panel."""

from __future__ import annotations

import html
from typing import Any

from almatools.registration import ExistingSearch, RegistrationResult

_RED, _AMBER, _GREY, _GREEN, _BLUE = "#c62828", "#8a5a00", "#555", "#1b5e20", "#0b5394"
_COLOURS = {"created": _GREEN, "converted": _GREEN, "ready": _GREEN, "checked": _GREEN, "done": _GREEN,
            "renewed": _GREEN, "updated": _GREEN, "unchanged": _BLUE,
            "planned": _BLUE, "blocked": _AMBER, "stopped": _AMBER, "failed": _RED}


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _box(status: str, message: str, extra: str = "") -> str:
    colour = _COLOURS.get(status, _GREY)
    return (f'<div style="border-left:6px solid {colour};padding:4px 10px;margin:4px 0">'
            f'<b style="color:{colour}">{_esc(status.upper())}</b> {_esc(message)}{extra}</div>')


def _code(value: Any) -> str:
    return str(value.get("value") or "") if isinstance(value, dict) else str(value or "")


def _record_table(user: dict[str, Any]) -> str:
    rows = [("Primary identifier", user.get("primary_id")),
            ("Name", " ".join(str(user.get(k) or "") for k in ("first_name", "middle_name", "last_name")).strip()),
            ("User group", _code(user.get("user_group"))),
            ("Account type", _code(user.get("account_type"))), ("External id", user.get("external_id")),
            ("Status", _code(user.get("status"))), ("Expiration date", str(user.get("expiry_date") or "").rstrip("Z")),
            ("Purge date", str(user.get("purge_date") or "").rstrip("Z"))]
    body = "".join(f"<tr><td style='padding:1px 8px;color:{_GREY}'>{k}</td>"
                   f"<td style='padding:1px 8px'>{_esc(v)}</td></tr>"
                   for k, v in rows)
    return f"<table class='almatools-record'>{body}</table>"


def _email(user: dict[str, Any]) -> str:
    emails = (user.get("contact_info") or {}).get("email") or []
    preferred = [e for e in emails if isinstance(e, dict) and e.get("preferred")] or emails[:1]
    return str(preferred[0].get("email_address") or "") if preferred else ""


def _changes_table(before: dict[str, Any], after: dict[str, Any]) -> str:
    """The fields an update changes, the account's value beside the form's."""
    fields = [("First name", lambda u: u.get("first_name")), ("Middle name", lambda u: u.get("middle_name")),
              ("Last name", lambda u: u.get("last_name")),
              ("Birth date", lambda u: str(u.get("birth_date") or "").rstrip("Z")),
              ("Preferred email", _email), ("User group", lambda u: _code(u.get("user_group"))),
              ("Status", lambda u: _code(u.get("status"))),
              ("Expiration date", lambda u: str(u.get("expiry_date") or "").rstrip("Z")),
              ("Purge date", lambda u: str(u.get("purge_date") or "").rstrip("Z"))]
    rows = [(name, str(get(before) or ""), str(get(after) or "")) for name, get in fields]
    body = "".join(f"<tr><td style='padding:1px 8px;color:{_GREY}'>{name}</td><td style='padding:1px 8px'>{_esc(old)}"
                   f"</td><td style='padding:1px 8px'>→</td><td style='padding:1px 8px;background:#fff3b0'>"
                   f"{_esc(new)}</td></tr>" for name, old, new in rows if old != new)
    return (f"<table class='almatools-changes'><thead><tr><th></th><th style='text-align:left;padding:1px 8px'>now"
            f"</th><th></th><th style='text-align:left;padding:1px 8px'>after the update</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _result_html(outcome: RegistrationResult) -> str:
    shown = ("created", "converted", "renewed", "updated", "unchanged")
    extra = _record_table(outcome.user) if outcome.user and outcome.status in shown else ""
    return _box(outcome.status, outcome.message, extra)


def _search_html(search: ExistingSearch) -> str:
    if not search.candidates:
        notes = "".join(f"<li>{_esc(a)}</li>" for a in search.advice
                        if a != "No existing account found." and not search.blocked)
        return _box("checked", "No existing account found: by identifier, email or name.",
                    f"<ul>{notes}</ul>" if notes else "")
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{c}</th>" for c in
                   ("Match (of 100)", "Why", "Primary id", "Name", "Group", "Managed", "Status", "Expires", "Roles"))
    body = ""
    for c in search.candidates:
        managed = "SIS" if c.account_type == "EXTERNAL" else "local"
        roles = ", ".join("Patron" if r == "200" else r for r in c.roles)
        body += ("<tr>" + "".join(f"<td style='padding:2px 8px'>{_esc(v)}</td>" for v in (
            c.score, "; ".join(c.reasons), c.primary_id, c.name, c.user_group, managed, c.status,
            c.expiry_date.isoformat() if c.expiry_date else "", roles)) + "</tr>")
    status = "blocked" if search.blocked else "found"
    advice = "".join(f"<li>{_esc(a)}</li>" for a in search.advice)
    decision = search.decision
    if decision is not None and decision.blocked:
        advice = (f"<li class='almatools-decision'><b>Do not create a new account.</b> {_esc(decision.reason)}</li>"
                  + "".join(f"<li>{_esc(a)}</li>" for a in search.advice if a != decision.reason))
    return (f"<div class='almatools-candidates'><b style='color:{_AMBER if search.blocked else _BLUE}'>"
            f"{len(search.candidates)} existing account(s) found, best match first ({status}).</b>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><ul>{advice}</ul></div>")
