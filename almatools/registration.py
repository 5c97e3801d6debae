"""Patron registration: the institution's procedure, enforced before anything reaches Alma.

:func:`validate` checks a :class:`PatronForm` (what staff type) against a :class:`~almatools.policy.Policy`
and returns a list of :class:`Issue` — it never raises on bad data — and, when nothing blocks, the Alma
user record to create. Each issue names the field, its severity and what to do, in a librarian's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from almatools.policy import Affiliation, GroupPolicy, Policy

__all__ = ["PatronForm", "Issue", "Validation", "validate", "password_problem", "COMMON_PASSWORDS"]

ERROR, WARNING, INFO = "error", "warning", "info"

# Alma's password rule (error 500038): at least 8 characters, not the user's identifier, not a common password.
COMMON_PASSWORDS = frozenset({
    "password", "password1", "password123", "12345678", "123456789", "1234567890", "qwerty123", "qwertyuiop",
    "iloveyou", "sunshine", "princess", "football", "baseball", "welcome1", "welcome123", "letmein1",
    "admin123", "abc12345", "11111111", "00000000", "passw0rd", "library1", "library123", "changeme",
    "trustno1", "starwars", "whatever", "superman", "dragon12", "monkey12",
})
# One @, no spaces, a dot in the domain, no empty labels: what Alma's notices need to be deliverable.
_EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_LABELS = {
    "first_name": "First name", "last_name": "Last name", "primary_id": "Primary identifier",
    "user_group": "User group", "expiry_date": "Expiration date", "purge_date": "Purge date",
    "email_type": "Email type", "email_address": "Email address", "birth_date": "Birth date",
    "phone_number": "Phone number", "patron_type": "Patron type (statistical category)",
    "password": "Password", "affiliation": "Affiliation", "managed": "Patron has institutional record",
}


@dataclass(frozen=True)
class Issue:
    """One problem with a registration: the rule, how bad, the field, and what to do."""

    rule: str
    severity: str  # error | warning | info
    field: str
    message: str

    @property
    def blocking(self) -> bool:
        return self.severity == ERROR


@dataclass(frozen=True)
class PatronForm:
    """What staff enter to register one patron. Dates may be ``date`` objects or ``YYYY-MM-DD`` text.

    ``managed`` is ``"sis"`` (Patron has institutional record = Yes: EXTERNAL) or ``"local"``
    (INTERNAL); empty means "as the affiliation says". ``password`` is used once to create the account
    and never written anywhere.
    """

    affiliation: str = ""
    first_name: str = ""
    middle_name: str = ""
    last_name: str = ""
    primary_id: str = ""
    user_group: str = ""
    managed: str = ""
    expiry_date: date | str | None = None
    purge_date: date | str | None = None
    email_address: str = ""
    email_type: str = "personal"
    birth_date: date | str | None = None
    phone_number: str = ""
    password: str = field(default="", repr=False)
    force_password_change: bool = True
    note: str = ""

    @classmethod
    def from_mapping(cls, row: dict[str, Any]) -> PatronForm:
        """A form from a CSV row or a dict: unknown keys are ignored, missing ones left empty."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k in known and v is not None}
        if isinstance(values.get("force_password_change"), str):
            values["force_password_change"] = values["force_password_change"].lower() not in ("", "0", "false", "no", "n")
        return cls(**values)


@dataclass(frozen=True)
class Validation:
    """The outcome of :func:`validate`: the issues, the cleaned form, and the record when nothing blocks."""

    issues: list[Issue]
    form: PatronForm
    record: dict[str, Any] | None = field(repr=False)  # may hold the temporary password: never shown
    group: GroupPolicy | None
    affiliation: Affiliation | None

    @property
    def ok(self) -> bool:
        """True when no issue blocks creation (warnings may remain)."""
        return not any(i.blocking for i in self.issues)

    def by_field(self) -> dict[str, list[Issue]]:
        """Issues grouped by field, for marking form fields."""
        grouped: dict[str, list[Issue]] = {}
        for issue in self.issues:
            grouped.setdefault(issue.field, []).append(issue)
        return grouped


def _to_date(value: date | str | None) -> tuple[date | None, bool]:
    """(date, ok): text in ISO form (``2026-06-30``, also with Alma's trailing ``Z``) or a date."""
    if value is None or value == "":
        return None, True
    if isinstance(value, datetime):
        return value.date(), True
    if isinstance(value, date):
        return value, True
    text = str(value).strip().rstrip("Zz")
    try:
        return date.fromisoformat(text), True
    except ValueError:
        return None, False


def password_problem(password: str, primary_id: str) -> str | None:
    """Why Alma would refuse this password (its rule 500038), or None."""
    if len(password) < 8:
        return "Use at least 8 characters."
    if password.casefold() == primary_id.casefold():
        return "The password must not be the patron's identifier."
    if password.casefold() in COMMON_PASSWORDS:
        return "That password is too common; choose another."
    return None


def _alma_date(d: date) -> str:
    return d.isoformat() + "Z"


def validate(form: PatronForm, policy: Policy, *, today: date | None = None) -> Validation:
    """Check a registration against the policy.

    Never raises on bad data: every problem becomes an :class:`Issue`. The returned record (Alma's
    JSON user object, ready for ``POST /users``) is present only when no issue is an error.
    """
    today = today or date.today()
    issues: list[Issue] = []

    def add(rule: str, severity: str, name: str, message: str) -> None:
        issues.append(Issue(rule, severity, name, message))

    clean = replace(form, **{k: " ".join(str(getattr(form, k)).split()) for k in
                             ("first_name", "middle_name", "last_name", "email_address", "phone_number")})

    affiliation = policy.affiliations.get(clean.affiliation) if clean.affiliation else None
    if clean.affiliation and affiliation is None:
        add("UNKNOWN_AFFILIATION", ERROR, "affiliation",
            f"Choose one of the affiliations of {policy.name}: {', '.join(a.label for a in policy.affiliations.values())}.")
    group_code = clean.user_group or (affiliation.group if affiliation else "")
    if affiliation and clean.user_group and clean.user_group != affiliation.group:
        add("GROUP_DISAGREES", WARNING, "user_group",
            f"The procedure puts a {affiliation.label.lower()} in group {affiliation.group}, not {clean.user_group}; "
            "check the affiliation or the group.")
    group = policy.group(group_code)
    if group_code and group is None:
        add("UNKNOWN_GROUP", ERROR, "user_group",
            f"User group {group_code} is not in the policy; use one of {', '.join(policy.groups)}.")
    if not clean.affiliation and not group_code:
        add("MISSING_FIELD", ERROR, "affiliation", "Choose the patron's affiliation (who they are).")

    managed = clean.managed or (affiliation.managed if affiliation else ("sis" if group and group.sis_loaded else "local"))
    if managed not in ("sis", "local"):
        add("BAD_CHOICE", ERROR, "managed", "Say whether the SIS manages this patron: sis or local.")
        managed = "local"
    if affiliation and clean.managed and clean.managed != affiliation.managed:
        expected = "SIS-managed (Patron has institutional record = Yes)" if affiliation.sis_managed else "locally managed"
        add("MANAGED_DISAGREES", WARNING, "managed",
            f"The procedure treats a {affiliation.label.lower()} as {expected}. A record wrongly flagged SIS-managed can "
            "be overwritten by the next SIS load; one wrongly local is duplicated by it.")
    if group and managed == "local" and group.sis_loaded:
        add("LOCAL_IN_SIS_GROUP", WARNING, "managed",
            f"Group {group.code} comes with the SIS load: if this person is in the SIS, make the record SIS-managed "
            "so the next load updates it instead of creating a duplicate.")

    # Primary identifier: trimmed, case set by the group, format checked.
    primary_id = group.normalise_id(clean.primary_id) if group else "".join(clean.primary_id.split())
    clean = replace(clean, primary_id=primary_id, user_group=group_code, managed=managed)
    if primary_id and group and not group.id_matches(primary_id):
        extra = " It must be identical to the value in the SIS, or the next load makes a duplicate." if managed == "sis" else ""
        add("BAD_ID_FORMAT", ERROR, "primary_id", f"The primary identifier should be {group.id_hint}.{extra}")

    # Dates.
    expiry, expiry_ok = _to_date(clean.expiry_date)
    purge, purge_ok = _to_date(clean.purge_date)
    birth, birth_ok = _to_date(clean.birth_date)
    for name, ok in (("expiry_date", expiry_ok), ("purge_date", purge_ok), ("birth_date", birth_ok)):
        if not ok:
            add("BAD_DATE", ERROR, name, f"{_LABELS[name]}: write the date as YYYY-MM-DD, e.g. {today.isoformat()}.")
    if expiry and expiry <= today:
        add("EXPIRY_NOT_FUTURE", ERROR, "expiry_date", "The expiration date must be in the future.")
    if expiry and purge is None and purge_ok:
        purge = expiry + timedelta(days=policy.retention_days)
        add("PURGE_DEFAULTED", INFO, "purge_date",
            f"Purge date set to {purge.isoformat()}: the expiration date plus the {policy.retention_days}-day retention period.")
    if expiry and purge:
        if purge < expiry:
            add("PURGE_BEFORE_EXPIRY", ERROR, "purge_date",
                "The purge date is before the expiration date: the Purge Users job could delete an active patron.")
        elif purge < expiry + timedelta(days=policy.retention_days):
            add("PURGE_TOO_SOON", WARNING, "purge_date",
                f"The purge date is sooner than the expiration date plus {policy.retention_days} days (the retention "
                "period): it may delete an active record too early.")
    if birth and birth >= today:
        add("BAD_DATE", ERROR, "birth_date", "The birth date must be in the past.")

    if clean.email_address and not _EMAIL.match(clean.email_address):
        add("BAD_EMAIL", ERROR, "email_address",
            f"{clean.email_address!r} is not an email address Alma can send notices to; check it for typos.")

    # Mandatory fields (after the defaults above).
    present = {"first_name": clean.first_name, "last_name": clean.last_name, "primary_id": primary_id,
               "user_group": group_code, "expiry_date": expiry if expiry_ok else "x", "purge_date": purge if purge_ok else "x",
               "email_type": clean.email_type if clean.email_address or clean.email_type else "",
               "email_address": clean.email_address, "birth_date": birth if birth_ok else "x",
               "phone_number": clean.phone_number, "patron_type": group.patron_type if group else "x"}
    for name in policy.mandatory:
        if not present.get(name):
            message = (f"Group {group_code} has no patron type in the policy file; add patron_type to [groups.{group_code}]."
                       if name == "patron_type" else f"Fill in the {_LABELS[name].lower()}: {policy.name} requires it.")
            add("MISSING_FIELD", ERROR, name, message)

    # Passwords: only where the procedure wants one.
    mode = "none" if managed == "sis" else (group.password if group else "optional")
    if clean.password and mode == "none":
        why = ("SIS-managed patrons sign in with their institutional login" if managed == "sis"
               else "these patrons sign in with their external identity")
        add("NO_PASSWORD_WANTED", ERROR, "password", f"Do not set an Alma password: {why}. Clear the password field.")
    elif mode == "temporary" and not clean.password:
        add("MISSING_FIELD", ERROR, "password",
            "Enter a temporary password; the patron signs in to discovery and My Account with it.")
    if clean.password and mode != "none":
        problem = password_problem(clean.password, primary_id)
        if problem:
            add("BAD_PASSWORD", ERROR, "password", problem)
        elif mode == "temporary" and not clean.force_password_change:
            add("FORCE_CHANGE_OFF", WARNING, "password",
                "Tick 'force password change on next login' so the patron replaces the temporary password.")

    record = None
    if group and not any(i.blocking for i in issues):
        record = _record(clean, policy, group, expiry, purge, birth, mode)
    return Validation(issues=issues, form=replace(clean, password=""), record=record, group=group,
                      affiliation=affiliation)


def _record(form: PatronForm, policy: Policy, group: GroupPolicy, expiry: date | None, purge: date | None,
            birth: date | None, mode: str) -> dict[str, Any]:
    sis = form.managed == "sis"
    record: dict[str, Any] = {
        "record_type": {"value": "PUBLIC"},
        "primary_id": form.primary_id,
        "first_name": form.first_name,
        "middle_name": form.middle_name,
        "last_name": form.last_name,
        "user_group": {"value": group.code},
        "account_type": {"value": "EXTERNAL" if sis else "INTERNAL"},
        "external_id": policy.sis_profiles[0] if sis else "",
        "status": {"value": "ACTIVE"},
        "contact_info": {},
    }
    if expiry:
        record["expiry_date"] = _alma_date(expiry)
    if purge:
        record["purge_date"] = _alma_date(purge)
    if birth:
        record["birth_date"] = _alma_date(birth)
    if form.email_address:
        record["contact_info"]["email"] = [{"email_address": form.email_address, "preferred": True,
                                            "email_type": [{"value": form.email_type or "personal"}]}]
    if form.phone_number:
        record["contact_info"]["phone"] = [{"phone_number": form.phone_number, "preferred": True,
                                            "phone_type": [{"value": "mobile"}]}]
    if group.patron_type:
        record["user_statistic"] = [{"statistic_category": {"value": group.patron_type},
                                     "category_type": {"value": policy.patron_type_category_type}}]
    if form.note:
        record["user_note"] = [{"note_type": {"value": "CIRCULATION"}, "note_text": form.note, "user_viewable": False}]
    if form.password and mode != "none":
        record["password"] = form.password
        record["force_password_change"] = "TRUE" if form.force_password_change else ""
    return record
