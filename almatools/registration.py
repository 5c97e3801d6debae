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

__all__ = ["PatronForm", "Issue", "Validation", "validate", "password_problem", "COMMON_PASSWORDS", "Candidate",
           "ExistingSearch", "find_existing", "RegistrationResult", "register", "convert_to_sis", "record_merge_request",
           "explain_alma_error"]

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

    text = ("affiliation", "first_name", "middle_name", "last_name", "primary_id", "user_group", "managed",
            "email_address", "email_type", "phone_number", "password", "note")
    clean = replace(form, **{k: "" if getattr(form, k) is None else str(getattr(form, k)) for k in text})
    clean = replace(clean, **{k: " ".join(getattr(clean, k).split()) for k in
                              ("affiliation", "first_name", "middle_name", "last_name", "user_group", "managed",
                               "email_address", "email_type", "phone_number")})

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
    if group.patron_type:
        record["user_statistic"] = [{"statistic_category": {"value": group.patron_type},
                                     "category_type": {"value": policy.patron_type_category_type}}]
    if form.note:
        record["user_note"] = [{"note_type": {"value": "CIRCULATION"}, "note_text": form.note, "user_viewable": False}]
    if form.password and mode != "none":
        record["password"] = form.password
        record["force_password_change"] = "TRUE" if form.force_password_change else ""
    return record


# -- Before creating: search for the person ---------------------------------------------------------

PATRON_ROLE = "200"  # Alma's role_type code of the Patron role


def _code(value: Any) -> str:
    return str(value.get("value") or "") if isinstance(value, dict) else str(value or "")


def _fold(text: Any) -> str:
    return " ".join(str(text or "").split()).casefold()


def _emails(record: dict[str, Any]) -> set[str]:
    return {_fold(e.get("email_address")) for e in (record.get("contact_info") or {}).get("email") or []
            if e.get("email_address")}


def _roles(record: dict[str, Any]) -> tuple[str, ...]:
    return tuple(_code(r.get("role_type")) for r in record.get("user_role") or [])


@dataclass(frozen=True)
class Candidate:
    """An existing Alma account that may belong to the person being registered."""

    primary_id: str
    name: str
    user_group: str
    account_type: str
    status: str
    expiry_date: date | None
    roles: tuple[str, ...]
    score: int  # 100 exact identifier, 80 same email, 75 same name and birth date, 50 same name, 30 similar name
    reasons: tuple[str, ...]
    record: dict[str, Any] = field(repr=False, compare=False)

    @property
    def exact_id(self) -> bool:
        return self.score >= 100

    @property
    def same_person(self) -> bool:
        """Strong evidence: an identifier, an email, or name and birth date."""
        return self.score >= 75

    @property
    def has_staff_role(self) -> bool:
        return any(r and r != PATRON_ROLE for r in self.roles)


@dataclass(frozen=True)
class ExistingSearch:
    """What :func:`find_existing` found, ranked, and what the procedure says to do about it."""

    candidates: list[Candidate]
    blocked: bool
    advice: list[str]
    merge_from: list[str]  # old accounts to merge into the new one once it exists (seed 003's path)
    calls: int


def _candidate(record: dict[str, Any], form: PatronForm, birth: date | None, exact: bool) -> Candidate:
    from almatools.models import parse_alma_date

    reasons: list[str] = []
    score = 0
    if exact:
        score, reasons = 100, ["the primary identifier or another identifier is the same"]
    if form.email_address and _fold(form.email_address) in _emails(record):
        score = max(score, 80)
        reasons.append("same email address")
    same_last = _fold(record.get("last_name")) == _fold(form.last_name)
    same_first = _fold(record.get("first_name")) == _fold(form.first_name)
    their_birth = parse_alma_date(record.get("birth_date"))
    if same_last and same_first:
        if birth and their_birth == birth:
            score = max(score, 75)
            reasons.append("same name and birth date")
        else:
            score = max(score, 50)
            reasons.append("same name")
    elif same_last and _fold(record.get("first_name"))[:1] == _fold(form.first_name)[:1]:
        score = max(score, 30)
        reasons.append("same last name and first initial")
    name = " ".join(p for p in (record.get("first_name"), record.get("last_name")) if p)
    return Candidate(primary_id=str(record.get("primary_id")), name=name, user_group=_code(record.get("user_group")),
                     account_type=_code(record.get("account_type")), status=_code(record.get("status")),
                     expiry_date=parse_alma_date(record.get("expiry_date")), roles=_roles(record), score=score,
                     reasons=tuple(reasons), record=record)


def find_existing(client, form: PatronForm, policy: Policy, *, today: date | None = None,
                  max_candidates: int = 10) -> ExistingSearch:
    """Search Alma for the person before creating an account (both procedures' first step).

    Looks the primary identifier up among every user's primary id and identifiers, then searches by
    email and by name, and ranks what it finds. An exact identifier match blocks creation. A staff
    member who already has an account is told to add the role to it (one account, both roles). A
    person with an old account under another identifier gets a new account for the new affiliation and
    a merge request old → new, unless they left less than ``policy.move_wait_days`` ago.

    Args:
        client: an :class:`~almatools.client.AlmaClient`.
        form: the registration form (its primary id is normalised by the group's rules first).
        policy: the institution's policy.
        today: the date to judge "left less than a year ago" by.
        max_candidates: at most this many full records are fetched and ranked.
    """
    today = today or date.today()
    checked = validate(form, policy, today=today)
    form = checked.form
    birth, _ = _to_date(form.birth_date)
    start = client.calls
    found: dict[str, Candidate] = {}
    if form.primary_id:
        record = client.find_user(form.primary_id)
        if record is not None:
            found[_fold(record["primary_id"])] = _candidate(record, form, birth, exact=True)
    brief: list[str] = []
    if form.email_address and _EMAIL.match(form.email_address):
        brief += [e["primary_id"] for e in client.search_users(email=form.email_address, max_records=max_candidates)]
    if form.last_name and form.first_name:
        first = form.first_name.split()[0]
        brief += [e["primary_id"] for e in client.search_users(last_name=form.last_name, first_name=first,
                                                               max_records=max_candidates)]
    todo = list(dict.fromkeys(pid for pid in brief if _fold(pid) not in found))[:max_candidates]
    for record in client.fetch_users(todo, on_error=lambda *_: None):
        found.setdefault(_fold(record["primary_id"]), _candidate(record, form, birth, exact=False))
    ranked = sorted(found.values(), key=lambda c: (-c.score, c.primary_id))
    ranked = [c for c in ranked if c.score > 0]

    advice: list[str] = []
    merge_from: list[str] = []
    blocked = False
    new_is_staff = checked.group is not None and checked.group.record_type == "STAFF"
    for cand in ranked:
        if cand.exact_id:
            blocked = True
            if new_is_staff or cand.has_staff_role:
                advice.append(f"{cand.name} already has an account ({cand.primary_id}). Add the role to that account "
                              "on its Roles tab: one person keeps one account with both roles.")
            else:
                advice.append(f"An account with this identifier exists: {cand.primary_id} ({cand.name}, group "
                              f"{cand.user_group}). Update it instead of creating a second one.")
            continue
        if not cand.same_person:
            advice.append(f"Possible match: {cand.primary_id} ({cand.name}; {', '.join(cand.reasons)}). "
                          "Check with the patron before registering.")
            continue
        if new_is_staff or cand.has_staff_role:
            blocked = True
            advice.append(f"{cand.name} already has an account ({cand.primary_id}). Add the role to that account "
                          "instead of creating a separate record.")
            continue
        if cand.account_type == "EXTERNAL" and policy.move_wait_days:
            # Seed 003: the institutional login must be switched off before the person can use the external
            # identity, which is not the case until move_wait_days after they left (expiry_date).
            wait = timedelta(days=policy.move_wait_days)
            if cand.expiry_date is None:
                if cand.status != "INACTIVE":
                    blocked = True
                    advice.append(f"{cand.name} has an active institutional account ({cand.primary_id}) with no "
                                  "expiration date: they have not left yet, so they cannot be moved to a new account.")
                    continue
            elif cand.expiry_date > today - wait:
                blocked = True
                ready = (cand.expiry_date + wait).isoformat()
                if cand.expiry_date >= today:
                    when = f"is active until {cand.expiry_date.isoformat()}"
                else:
                    when = (f"ended on {cand.expiry_date.isoformat()}, less than {policy.move_wait_days} days ago, so "
                            "their institutional login is still active")
                advice.append(f"{cand.name} has an institutional account ({cand.primary_id}) that {when}: they cannot "
                              f"be moved to a new account yet. Try again from {ready}.")
                continue
        merge_from.append(cand.primary_id)
        advice.append(f"{cand.name} has an old account ({cand.primary_id}, {', '.join(cand.reasons)}). Create the new "
                      "account for the new affiliation; a merge request old → new goes to the merge worklist.")
    if not ranked:
        advice.append("No existing account found.")
    return ExistingSearch(candidates=ranked, blocked=blocked, advice=advice, merge_from=merge_from,
                          calls=client.calls - start)


# -- Create, confirm, convert -----------------------------------------------------------------------

MERGE_REQUEST_COLUMNS = ("from_primary_id", "to_primary_id", "reason", "requested_at", "source")


def record_merge_request(path, from_id: str, to_id: str, reason: str, *, when: datetime | None = None) -> None:
    """Append a merge request (old account FROM → new account TO) to the merge worklist's request file.

    The file is a CSV with the columns of :data:`MERGE_REQUEST_COLUMNS`; the merge worklist reads it.
    """
    import csv
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    new = not target.exists() or target.stat().st_size == 0
    with target.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(MERGE_REQUEST_COLUMNS)
        stamp = (when or datetime.now().astimezone()).isoformat(timespec="seconds")
        writer.writerow([from_id, to_id, reason, stamp, "registration"])


def explain_alma_error(error: Exception, record: dict[str, Any] | None = None) -> str:
    """What an Alma error on create or update means for staff, and what to do."""
    from almatools.errors import AlmaConnectionError, AlmaError, DuplicateError, QuotaExhaustedError

    code = getattr(error, "code", None)
    pid = (record or {}).get("primary_id", "")
    if isinstance(error, DuplicateError):
        return (f"Alma says the identifier {pid} (or another identifier of this patron) already belongs to a user. "
                "Search for the person and update that account instead of creating a second one.")
    if code == "401852":
        return ("Alma does not know this user group. Check the policy file's groups against Alma's UserGroups "
                "code table.")
    if code == "500038":
        return "Alma refused the password: at least 8 characters, not the identifier, not a common password."
    if code in ("401853", "401854", "401858"):
        return ("Alma refused the SIS setting: SIS-managed accounts need the SIS profile code as external id, "
                "local ones none, and an SIS-managed account's profile cannot change.")
    if code == "401664":
        return f"Alma says a mandatory field is missing: {getattr(error, 'message', error)}. Fill it in and try again."
    if isinstance(error, QuotaExhaustedError):
        return "Today's Alma API calls are used up: try again after the daily count resets. Nothing was lost."
    if isinstance(error, AlmaConnectionError):
        return "Alma could not be reached, or the connection broke. Check the network and try again; nothing is created twice."
    if isinstance(error, AlmaError):
        return f"Alma refused the request: {error.message} (error {error.code or error.status})."
    return str(error)


@dataclass(frozen=True)
class RegistrationResult:
    """The outcome of :func:`register` or :func:`convert_to_sis`: ``created``, ``converted``, ``planned`` (dry run),
    ``blocked`` or ``failed``."""

    status: str
    primary_id: str
    message: str
    issues: list[Issue] = field(default_factory=list)
    user: dict[str, Any] | None = field(default=None, repr=False)
    merge_from: list[str] = field(default_factory=list)
    calls: int = 0


def register(client, validation: Validation, *, search: ExistingSearch | None = None,
             merge_requests: Any = None) -> RegistrationResult:
    """Create the patron in Alma: refuse if validation failed or the identifier exists, POST, confirm with GET.

    Args:
        client: an :class:`~almatools.client.AlmaClient` (a dry-run client records the POST instead).
        validation: the result of :func:`validate`.
        search: the result of :func:`find_existing` for this same form, if staff ran it. A blocked search
            refuses; otherwise its identifier lookup stands in for this function's own (Alma's 401851 still
            refuses a taken identifier), and its merge requests are recorded once the new account exists.
            Without it, the identifier is looked up first (one call).
        merge_requests: path of the merge-request CSV (see :func:`record_merge_request`). Without it, the
            result's message tells staff which accounts to have merged.

    Returns:
        A :class:`RegistrationResult`: ``created`` (POST, then the GET confirmed it), ``planned`` (dry run),
        ``blocked`` (the person has an account) or ``failed`` (the form, or Alma refused; nothing created).
        Three calls without ``search``, two with it.
    """
    from almatools.errors import AlmaError

    start = client.calls
    pid = validation.form.primary_id
    if not validation.ok or validation.record is None:
        return RegistrationResult("failed", pid, "Fix the fields marked in red first.", validation.issues)
    if search is not None and search.blocked:
        return RegistrationResult("blocked", pid, " ".join(a for a in search.advice if a), validation.issues)
    merge_from = list(search.merge_from) if search else []
    try:
        if search is None:
            existing = client.find_user(pid)
            if existing is not None:
                return RegistrationResult(
                    "blocked", pid, f"An account with the identifier {pid} already exists ({existing.get('first_name', '')} "
                    f"{existing.get('last_name', '')}): update it instead of creating a second one.", validation.issues,
                    user=existing, calls=client.calls - start)
        created = client.create_user(validation.record) or {}
    except AlmaError as exc:
        return RegistrationResult("failed", pid, explain_alma_error(exc, validation.record), validation.issues,
                                  calls=client.calls - start)
    if client.dry_run:
        extra = f" A merge request {', '.join(merge_from)} → {pid} would be recorded." if merge_from else ""
        return RegistrationResult("planned", pid, f"Dry run: {pid} would be created; nothing was sent.{extra}",
                                  validation.issues, merge_from=merge_from, calls=client.calls - start)
    new_id = str(created.get("primary_id") or pid)
    notes = []
    for old in merge_from:
        if merge_requests is not None:
            record_merge_request(merge_requests, old, new_id,
                                 "old account of the same person; new account for the new affiliation")
            notes.append(f"Merge request {old} → {new_id} added to {merge_requests}.")
        else:
            notes.append(f"Ask a user administrator to merge the old account {old} into {new_id}.")
    try:
        confirmed = client.get_user(new_id)
    except AlmaError as exc:
        # The POST succeeded, so the account exists: say so, never "failed" (a retry would make a duplicate).
        return RegistrationResult("created", new_id, f"Created {new_id}, but Alma could not confirm it just now "
                                  f"({explain_alma_error(exc)}) Look it up before doing anything else.",
                                  validation.issues, user=created or None, merge_from=merge_from,
                                  calls=client.calls - start)
    message = " ".join([f"Created {confirmed['primary_id']} and confirmed it in Alma.", *notes])
    return RegistrationResult("created", confirmed["primary_id"], message, validation.issues, user=confirmed,
                              merge_from=merge_from, calls=client.calls - start)


def convert_to_sis(client, primary_id: str, policy: Policy, *, sis_ids: set[str] | None = None) -> RegistrationResult:
    """Make a locally managed patron SIS-managed (seed 000's FAQ: "Patron has institutional record" = Yes).

    Checks first: the account exists and is INTERNAL; its group is one the SIS loads; its primary
    identifier has the SIS format; and, when the current SIS extract's ids are given, the SIS really
    sends this identifier (otherwise the next load cannot match it and the record goes stale).
    INTERNAL → EXTERNAL is one-way in Alma, so a dry-run client is the way to run the checks alone.

    Returns:
        ``converted`` (PUT, then a GET confirmed the account is EXTERNAL), ``planned`` (dry run: the checks
        passed), ``blocked`` (a check failed; the message says which and what to do) or ``failed``.
    """
    from almatools.errors import AlmaError

    start = client.calls
    primary_id = "".join(str(primary_id or "").split())
    if not primary_id:
        return RegistrationResult("failed", "", "Enter the primary identifier of the account to convert.")
    try:
        record = client.find_user(primary_id)
    except AlmaError as exc:
        return RegistrationResult("failed", primary_id, explain_alma_error(exc), calls=client.calls - start)
    if record is None:
        return RegistrationResult("failed", primary_id, f"No account {primary_id} in Alma.", calls=client.calls - start)
    pid = record["primary_id"]
    problems = []
    if _code(record.get("account_type")) == "EXTERNAL":
        problems.append(f"{pid} is already SIS-managed.")
    group = policy.group(_code(record.get("user_group")))
    if group is None or not group.sis_loaded:
        problems.append(f"Its user group {_code(record.get('user_group'))} is not one the SIS loads; move it to the "
                        "SIS group first.")
    elif not group.id_matches(pid):
        problems.append(f"Its primary identifier {pid} is not {group.id_hint}: the SIS cannot match it.")
    if sis_ids is not None and pid.casefold() not in {s.casefold() for s in sis_ids}:
        problems.append(f"The current SIS extract does not have {pid}: the next load would not update it.")
    if problems:
        return RegistrationResult("blocked", pid, " ".join(problems), user=record, calls=client.calls - start)

    profile = policy.sis_profiles[0]

    def make_external(user: dict[str, Any]) -> None:
        user["account_type"] = {"value": "EXTERNAL"}
        user["external_id"] = profile
        user.pop("password", None)

    try:
        updated = client.put_user(pid, _changed(record, make_external))
        if client.dry_run:
            return RegistrationResult("planned", pid, f"Dry run: the checks passed; {pid} would become SIS-managed "
                                      f"(external id {profile}). Nothing was sent.", user=record,
                                      calls=client.calls - start)
        confirmed = client.get_user(pid)
    except AlmaError as exc:
        return RegistrationResult("failed", pid, explain_alma_error(exc, record), calls=client.calls - start)
    if _code(confirmed.get("account_type")) != "EXTERNAL":
        return RegistrationResult("failed", pid, f"Alma accepted the change but {pid} is still "
                                  f"{_code(confirmed.get('account_type'))}: check the record in Alma.",
                                  user=confirmed, calls=client.calls - start)
    return RegistrationResult("converted", pid, f"{pid} is now SIS-managed (external id {profile}); the next SIS "
                              "load updates it.", user=confirmed or updated, calls=client.calls - start)


def _changed(record: dict[str, Any], change) -> dict[str, Any]:
    import copy

    new = copy.deepcopy(record)
    change(new)
    return new
