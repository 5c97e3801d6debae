"""Validation of a registration against the policy: the issues (rule, severity, field, what to do) and
the Alma user record to create.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from almatools.catalog import Severity, entry_severity
from almatools.normalise import is_email
from almatools.policy import Affiliation, GroupPolicy, Policy

# The one severity vocabulary (almatools.catalog.Severity), as the plain strings an Issue holds.
ERROR, WARNING, INFO = Severity.ERROR.value, Severity.WARNING.value, Severity.INFO.value

# Alma's password rule (error 500038): at least 8 characters, not the user's identifier, not a common password.
COMMON_PASSWORDS = frozenset({
    "password", "password1", "password123", "12345678", "123456789", "1234567890", "qwerty123", "qwertyuiop",
    "iloveyou", "sunshine", "princess", "football", "baseball", "welcome1", "welcome123", "letmein1",
    "admin123", "abc12345", "11111111", "00000000", "passw0rd", "library1", "library123", "changeme",
    "trustno1", "starwars", "whatever", "superman", "dragon12", "monkey12",
})
# One @, no spaces, a dot in the domain, no empty labels: what Alma's notices need to be deliverable.
_LABELS = {
    "first_name": "First name", "last_name": "Last name", "primary_id": "Primary identifier",
    "user_group": "User group", "expiry_date": "Expiration date", "purge_date": "Purge date",
    "email_type": "Email type", "email_address": "Email address", "birth_date": "Birth date",
    "phone_number": "Phone number", "patron_type": "Patron type (statistical category)",
    "password": "Password", "affiliation": "Affiliation", "managed": "Patron has institutional record",
}
IDENTIFIER_PREFIX = "identifier_"  # CSV column / form field of an identifier type: identifier_UNIV_ID

# Fields Alma returns but never accepts (rest_user.xsd tags them G only; see the reference, section 4).
# Sending them back is at best ignored; the kit never does, on POST or on PUT.
OUTPUT_ONLY_FIELDS = ("full_name", "status_date", "last_patron_activity_date", "requests", "loans", "fees",
                      "proxy_for_user", "source_link_id", "source_institution_code", "linking_id", "link")
_OUTPUT_ONLY_IN_LISTS = {"user_statistic": ("category_type",)}


def strip_output_only(user: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of an Alma user object without its output-only fields (ready for POST or PUT)."""
    import copy

    clean = copy.deepcopy(dict(user))
    for name in OUTPUT_ONLY_FIELDS:
        clean.pop(name, None)
    for list_name, inner in _OUTPUT_ONLY_IN_LISTS.items():
        for item in clean.get(list_name) or []:
            if isinstance(item, dict):
                for name in inner:
                    item.pop(name, None)
    return clean


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

    @classmethod
    def of(cls, rule: str, field: str, message: str) -> Issue:
        """An issue of a catalogue rule, with the rule's severity at entry (:data:`~almatools.catalog.ENTRY_RULES`)."""
        return cls(rule, entry_severity(rule), field, message)


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
    # Identifier values by type code (e.g. {"UNIV_ID": "123456789"}), sent as user_identifier entries.
    identifiers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, row: dict[str, Any]) -> PatronForm:
        """A form from a CSV row or a dict: unknown keys are ignored, missing ones left empty.

        Columns named ``identifier_<TYPE>`` (e.g. ``identifier_UNIV_ID``) fill :attr:`identifiers`.
        """
        known = {f for f in cls.__dataclass_fields__} - {"identifiers"}
        values = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k in known and v is not None}
        if isinstance(values.get("force_password_change"), str):
            values["force_password_change"] = values["force_password_change"].lower() not in ("", "0", "false", "no", "n")
        identifiers = dict(row.get("identifiers") or {})
        for key, value in row.items():
            if isinstance(key, str) and key.lower().startswith(IDENTIFIER_PREFIX) and value is not None:
                identifiers[key[len(IDENTIFIER_PREFIX):]] = str(value).strip()
        return cls(**values, identifiers={k: v for k, v in identifiers.items() if k})


@dataclass(frozen=True)
class Validation:
    """The outcome of :func:`validate`: the issues, the cleaned form, and the record when nothing blocks."""

    issues: list[Issue]
    form: PatronForm
    record: dict[str, Any] | None = field(repr=False)  # may hold the temporary password: never shown
    group: GroupPolicy | None
    affiliation: Affiliation | None
    policy: Policy | None = field(default=None, repr=False, compare=False)  # what it was checked against
    today: date | None = None  # the date it was judged by

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

    def add(rule: str, name: str, message: str) -> None:
        issues.append(Issue.of(rule, name, message))

    text = ("affiliation", "first_name", "middle_name", "last_name", "primary_id", "user_group", "managed",
            "email_address", "email_type", "phone_number", "password", "note")
    clean = replace(form, **{k: "" if getattr(form, k) is None else str(getattr(form, k)) for k in text})
    clean = replace(clean, **{k: " ".join(getattr(clean, k).split()) for k in
                              ("affiliation", "first_name", "middle_name", "last_name", "user_group", "managed",
                               "email_address", "email_type", "phone_number")})

    affiliation = policy.affiliation(clean.affiliation)  # by key or by label ("Friend of the Library")
    if affiliation is not None:
        clean = replace(clean, affiliation=affiliation.key)
    if clean.affiliation and affiliation is None:
        add("UNKNOWN_AFFILIATION", "affiliation",
            f"Choose one of the affiliations of {policy.name}: {', '.join(a.label for a in policy.affiliations.values())}.")
    group_code = clean.user_group or (affiliation.group if affiliation else "")
    if affiliation and clean.user_group and clean.user_group != affiliation.group:
        add("GROUP_DISAGREES", "user_group",
            f"The procedure puts a {affiliation.label.lower()} in group {affiliation.group}, not {clean.user_group}; "
            "check the affiliation or the group.")
    group = policy.group(group_code)
    if group_code and group is None:
        add("UNKNOWN_GROUP", "user_group",
            f"User group {group_code} is not in the policy; use one of {', '.join(policy.groups)}.")
    if not clean.affiliation and not group_code:
        add("MISSING_FIELD", "affiliation", "Choose the patron's affiliation (who they are).")

    managed = clean.managed or (affiliation.managed if affiliation else ("sis" if group and group.sis_loaded else "local"))
    if managed not in ("sis", "local"):
        add("BAD_CHOICE", "managed", "Say whether the SIS manages this patron: sis or local.")
        managed = "local"
    if affiliation and clean.managed and clean.managed != affiliation.managed:
        expected = "SIS-managed (Patron has institutional record = Yes)" if affiliation.sis_managed else "locally managed"
        add("MANAGED_DISAGREES", "managed",
            f"The procedure treats a {affiliation.label.lower()} as {expected}. A record wrongly flagged SIS-managed can "
            "be overwritten by the next SIS load; one wrongly local is duplicated by it.")
    if group and managed == "local" and group.sis_loaded:
        add("LOCAL_IN_SIS_GROUP", "managed",
            f"Group {group.code} comes with the SIS load: if this person is in the SIS, make the record SIS-managed "
            "so the next load updates it instead of creating a duplicate.")

    # Primary identifier: trimmed, case set by the group, format checked.
    primary_id = group.normalise_id(clean.primary_id) if group else "".join(clean.primary_id.split())
    clean = replace(clean, primary_id=primary_id, user_group=group_code, managed=managed)
    if primary_id and group and not group.id_matches(primary_id):
        extra = " It must be identical to the value in the SIS, or the next load makes a duplicate." if managed == "sis" else ""
        add("BAD_ID_FORMAT", "primary_id", f"The primary identifier should be {group.id_hint}.{extra}")

    # Dates.
    expiry, expiry_ok = _to_date(clean.expiry_date)
    purge, purge_ok = _to_date(clean.purge_date)
    birth, birth_ok = _to_date(clean.birth_date)
    for name, ok in (("expiry_date", expiry_ok), ("purge_date", purge_ok), ("birth_date", birth_ok)):
        if not ok:
            add("BAD_DATE", name, f"{_LABELS[name]}: write the date as YYYY-MM-DD, e.g. {today.isoformat()}.")
    if expiry is None and expiry_ok and group is not None:
        # The same default on every path (form, CSV, Python): the group's default period from today.
        expiry = today + timedelta(days=group.default_expiry_days)
        add("EXPIRY_DEFAULTED", "expiry_date",
            f"Expiration date set to {expiry.isoformat()}: group {group.code}'s default of {group.default_expiry_days} days.")
    if expiry and expiry <= today:
        add("EXPIRY_NOT_FUTURE", "expiry_date", "The expiration date must be in the future.")
    if expiry and purge is None and purge_ok:
        purge = expiry + timedelta(days=policy.retention_days)
        add("PURGE_DEFAULTED", "purge_date",
            f"Purge date set to {purge.isoformat()}: the expiration date plus the {policy.retention_days}-day retention period.")
    if expiry and purge:
        if purge < expiry:
            add("PURGE_BEFORE_EXPIRY", "purge_date",
                "The purge date is before the expiration date: the Purge Users job could delete an active patron.")
        elif purge < expiry + timedelta(days=policy.retention_days):
            add("PURGE_TOO_SOON", "purge_date",
                f"The purge date is sooner than the expiration date plus {policy.retention_days} days (the retention "
                "period): it may delete an active record too early.")
    if birth and birth >= today:
        add("BAD_DATE", "birth_date", "The birth date must be in the past.")

    identifiers = _check_identifiers(clean, policy, group, managed, primary_id, add)
    clean = replace(clean, identifiers=identifiers)

    if clean.email_address and not is_email(clean.email_address):
        add("BAD_EMAIL", "email_address",
            f"{clean.email_address!r} is not an email address Alma can send notices to; check it for typos.")

    # Mandatory fields (after the defaults above).
    present = {"first_name": clean.first_name, "last_name": clean.last_name, "primary_id": primary_id,
               "user_group": group_code, "expiry_date": expiry if expiry_ok else "x", "purge_date": purge if purge_ok else "x",
               "email_type": clean.email_type if clean.email_address or clean.email_type else "",
               "email_address": clean.email_address, "birth_date": birth if birth_ok else "x",
               "phone_number": clean.phone_number,
               "patron_type": policy.patron_type_for(group.code, clean.affiliation) if group else "x"}
    # The fields an unknown affiliation or group would have given (the group, its default dates) are not
    # reported missing as well: the one message says what to fix.
    derived = {"user_group", "expiry_date", "purge_date", "patron_type"} if group is None and (
        clean.affiliation or group_code) else set()
    for name in policy.mandatory:
        if not present.get(name) and name not in derived:
            message = (f"Group {group_code} has no patron type in the policy file; add patron_type to [groups.{group_code}]."
                       if name == "patron_type" else f"Fill in the {_LABELS[name].lower()}: {policy.name} requires it.")
            add("MISSING_FIELD", name, message)

    # Passwords: only where the procedure wants one.
    mode = "none" if managed == "sis" else (group.password if group else "optional")
    if clean.password and mode == "none":
        why = ("SIS-managed patrons sign in with their institutional login" if managed == "sis"
               else "these patrons sign in with their external identity")
        add("NO_PASSWORD_WANTED", "password", f"Do not set an Alma password: {why}. Clear the password field.")
    elif mode == "temporary" and not clean.password:
        add("MISSING_FIELD", "password",
            "Enter a temporary password; the patron signs in to discovery and My Account with it.")
    if clean.password and mode != "none":
        problem = password_problem(clean.password, primary_id)
        if problem:
            add("BAD_PASSWORD", "password", problem)
        elif mode == "temporary" and not clean.force_password_change:
            add("FORCE_CHANGE_OFF", "password",
                "Tick 'force password change on next login' so the patron replaces the temporary password.")

    record = None
    if group and not any(i.blocking for i in issues):
        record = _record(clean, policy, group, expiry, purge, birth, mode)
    return Validation(issues=issues, form=replace(clean, password=""), record=record, group=group,
                      affiliation=affiliation, policy=policy, today=today)


def _check_identifiers(form: PatronForm, policy: Policy, group: GroupPolicy | None, managed: str, primary_id: str,
                       add) -> dict[str, str]:
    """The identifiers to send, by type: the ones typed, plus the group's SIS match types (required for an
    SIS-managed record: the SIS profile matches on them). Problems go through ``add``."""
    by_fold = {code.casefold(): code for code in policy.identifier_types}
    values: dict[str, str] = {}
    for typed, value in form.identifiers.items():
        code = by_fold.get(str(typed).casefold())
        if code is None:
            if value:
                known = ", ".join(policy.identifier_types) or "none"
                add("UNKNOWN_IDENTIFIER_TYPE", IDENTIFIER_PREFIX + str(typed),
                    f"The policy does not describe the identifier type {typed}; use one of: {known}.")
            continue
        values[code] = policy.identifier_types[code].normalise(value)
    wanted = group.sis_match_ids if group else ()
    for code in wanted:
        kind = policy.identifier_types[code]
        if not values.get(code) and kind.default_from == "primary_id" and primary_id:
            values[code] = kind.normalise(primary_id)
            add("IDENTIFIER_DEFAULTED", IDENTIFIER_PREFIX + code,
                f"{kind.label} set to the primary identifier, {values[code]}.")
        if not values.get(code) and managed == "sis":
            add("MISSING_FIELD", IDENTIFIER_PREFIX + code,
                f"Fill in the {kind.label}: the SIS load matches patrons of group {group.code} on it, so without "
                "it the next load creates a duplicate.")
    for code, value in values.items():
        kind = policy.identifier_types[code]
        if value and not kind.matches(value):
            add("BAD_IDENTIFIER", IDENTIFIER_PREFIX + code, f"The {kind.label} should be {kind.hint}.")
    return {code: value for code, value in values.items() if value}


def _record(form: PatronForm, policy: Policy, group: GroupPolicy, expiry: date | None, purge: date | None,
            birth: date | None, mode: str) -> dict[str, Any]:
    sis = form.managed == "sis"
    record: dict[str, Any] = {
        "record_type": {"value": group.record_type},
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
    patron_type = policy.patron_type_for(group.code, form.affiliation)
    if patron_type:
        # The category code only: category_type is output-only (Alma fills it in from the code).
        record["user_statistic"] = [{"statistic_category": {"value": patron_type}}]
    if form.identifiers:
        segment = "External" if sis else "Internal"
        record["user_identifier"] = [{"value": value, "id_type": {"value": code}, "status": "ACTIVE",
                                      "segment_type": segment} for code, value in form.identifiers.items()]
    if form.note:
        record["user_note"] = [{"note_type": {"value": "CIRCULATION"}, "note_text": form.note, "user_viewable": False}]
    if form.password and mode != "none":
        record["password"] = form.password
        record["force_password_change"] = "TRUE" if form.force_password_change else ""
    return strip_output_only(record)
