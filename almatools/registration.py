"""Patron registration: the institution's procedure, enforced before anything reaches Alma.

:func:`validate` checks a :class:`PatronForm` (what staff type) against a :class:`~almatools.policy.Policy`
and returns a list of :class:`Issue` — it never raises on bad data — and, when nothing blocks, the Alma
user record to create. Each issue names the field, its severity and what to do, in a librarian's words.

:func:`find_existing` searches Alma for the person and :func:`decide` (pure: no I/O) turns what it found
into one decision, shared by the form, the bulk CSV and :func:`register`: ``create``, ``create_merge``
(a former affiliate moving to a new affiliation: a new account plus a merge request old -> new), or a
block that offers the right action on the existing account: ``renew`` (:func:`renew`), ``update``
(:func:`update_existing`), ``add_role`` (staff: one account with both roles) or ``block`` (nothing to do
here yet, e.g. a recent graduate whose institutional login is still active).

Nothing registration sends carries Alma's output-only fields (:data:`OUTPUT_ONLY_FIELDS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from almatools.catalog import Severity, entry_severity
from almatools.normalise import email_key, given_name, is_email, name_forms, surname_key, surname_parts
from almatools.policy import Affiliation, GroupPolicy, Policy

__all__ = ["PatronForm", "Issue", "Validation", "validate", "password_problem", "COMMON_PASSWORDS", "Candidate",
           "ExistingSearch", "find_existing", "RegistrationResult", "register", "convert_to_sis", "record_merge_request",
           "explain_alma_error", "Decision", "decide", "renew", "update_existing", "OUTPUT_ONLY_FIELDS",
           "strip_output_only", "ACTIONS"]

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
    for name in policy.mandatory:
        if not present.get(name):
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


# -- Before creating: search for the person ---------------------------------------------------------

PATRON_ROLE = "200"  # Alma's role_type code of the Patron role


def _code(value: Any) -> str:
    return str(value.get("value") or "") if isinstance(value, dict) else str(value or "")


def _fold(text: Any) -> str:
    return " ".join(str(text or "").split()).casefold()


def _emails(record: dict[str, Any]) -> set[str]:
    return {email_key(e.get("email_address")) for e in (record.get("contact_info") or {}).get("email") or []
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

    @property
    def locally_managed(self) -> bool:
        return self.account_type != "EXTERNAL"

    def active_on(self, day: date) -> bool:
        """ACTIVE and not expired on ``day`` (no expiration date counts as not expired)."""
        return self.status != "INACTIVE" and (self.expiry_date is None or self.expiry_date >= day)


ACTIONS = ("create", "create_merge", "renew", "update", "add_role", "block")
_OFFERS = {"renew": ("renew", "update"), "update": ("update",)}


@dataclass(frozen=True)
class Decision:
    """What to do with a registration, given the accounts the person already has.

    Attributes:
        action: one of :data:`ACTIONS`. ``create`` and ``create_merge`` create a new account (the latter
            with a merge request old -> new); the others block creation and name what to do instead.
        reason: why, in a librarian's words.
        target: the existing account the action applies to ("" for create).
        merge_from: old accounts to merge into the new one (``create_merge`` only).
        advice: one line per account found, best match first (what the form lists).
        renew_expiry, renew_purge: the dates a renewal sets (the group's defaults), for ``renew``.
    """

    action: str
    reason: str
    target: str = ""
    merge_from: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()
    renew_expiry: date | None = None
    renew_purge: date | None = None

    @property
    def blocked(self) -> bool:
        """True when no new account may be created."""
        return self.action not in ("create", "create_merge")

    @property
    def offers(self) -> tuple[str, ...]:
        """The actions staff can take on the existing account from the form (``renew``, ``update``)."""
        return _OFFERS.get(self.action, ())


def renewal_dates(policy: Policy, group_code: str | None, today: date) -> tuple[date, date] | None:
    """(expiry, purge) a renewal sets: the group's default period from today, then the retention period."""
    group = policy.group(group_code)
    if group is None:
        return None
    expiry = today + timedelta(days=group.default_expiry_days)
    return expiry, expiry + timedelta(days=policy.retention_days)


def decide(checked: Validation, candidates: list[Candidate], policy: Policy, *,
           today: date | None = None) -> Decision:
    """The one decision the form, the bulk CSV and :func:`register` share. Pure: no calls to Alma.

    Rules (seeds 000 and 003), for each account that is the same person (an identifier, the email, or
    name and birth date), best match first; the first that blocks decides:

    - staff (the new account is a STAFF record, or the old one holds a role other than Patron): block,
      **add the role** to the existing account (one account, both roles);
    - the same identifier, or the same user group: block. A locally managed account is offered
      **renew** (new expiry and purge date from the group's defaults) or update; an SIS-managed one
      **update** (the SIS load sets its dates);
    - an active account in another affiliation: if SIS-managed, the person has not left yet: **block**;
      if locally managed and the policy says one person keeps one account: **update** it; otherwise
      it is listed and the new account is created;
    - a former affiliate (inactive or expired) moving to a new affiliation: a new account plus a merge
      request old -> new (**create_merge**), unless an institutional account ended less than
      ``move_wait_days`` ago (a recent graduate's login is still active): **block** until then.

    Weaker matches (the same name only) are listed for staff to check; they never block.
    """
    today = today or date.today()
    new_group = checked.group.code if checked.group else checked.form.user_group
    new_is_staff = checked.group is not None and checked.group.record_type == "STAFF"
    advice: list[str] = []
    merge_from: list[str] = []
    verdict: tuple[str, str, str] | None = None
    renew_dates: tuple[date, date] | None = None
    for cand in candidates:
        pid, name, group = cand.primary_id, cand.name, cand.user_group
        if not cand.same_person:
            advice.append(f"Possible match: {pid} ({name}; {', '.join(cand.reasons)}). Check with the patron "
                          "before registering.")
            continue
        active = cand.active_on(today)
        state = ("active" if active else "inactive" if cand.status == "INACTIVE" else
                 f"expired ({cand.expiry_date.isoformat()})" if cand.expiry_date else "inactive")
        found: tuple[str, str] | None = None
        if new_is_staff or cand.has_staff_role:
            found = ("add_role", f"{name} already has an account ({pid}). Add the role to that account on its Roles "
                                 "tab: one person keeps one account with both roles.")
        elif cand.exact_id or group == new_group:
            why = (f"An account with this identifier exists: {pid} ({name}, group {group}, {state})" if cand.exact_id
                   else f"{name} already has an {state} account in group {group}: {pid}")
            dates = renewal_dates(policy, group, today) if cand.locally_managed else None
            if dates and active and cand.expiry_date is not None and cand.expiry_date >= dates[0]:
                # Already valid as long as a renewal would make it (e.g. just renewed): only an update is left.
                found = ("update", f"{why}, valid until {cand.expiry_date.isoformat()}. Update it instead of "
                                   "creating a second one.")
            elif dates:
                if renew_dates is None and verdict is None:
                    renew_dates = dates
                found = ("renew", f"{why}. Renew it (new expiration date {dates[0].isoformat()}) or update it "
                                  "instead of creating a second one.")
            elif cand.locally_managed:
                found = ("update", f"{why}, in a group the policy does not describe. Update it instead of creating "
                                   "a second one.")
            else:
                found = ("update", f"{why}, managed by the SIS. Update it instead of creating a second one (the SIS "
                                   "load keeps its dates; ask the SIS office if they are wrong).")
        elif active and not cand.locally_managed:
            # Seed 003: the institutional login must be switched off before the person can use another
            # identity, which is not the case while the SIS account is active (and move_wait_days after).
            if cand.expiry_date is not None:
                ready = (cand.expiry_date + timedelta(days=policy.move_wait_days)).isoformat()
                until, then = f"is active until {cand.expiry_date.isoformat()}", f" Try again from {ready}."
            else:
                until, then = "is active with no expiration date", ""
            found = ("block", f"{name} has an institutional account ({pid}, group {group}) that {until}: they have "
                              f"not left yet, so they cannot be moved to a new account yet; use that account.{then}")
        elif active:
            if policy.one_account_per_person:
                found = ("update", f"{name} has an active, locally managed account in group {group}: {pid}. One "
                                   "person keeps one account: update it to the new affiliation instead of creating a "
                                   "second one.")
            else:
                advice.append(f"{name} also has an active account in group {group}: {pid}. The policy allows a "
                              "second account for another affiliation; no merge is requested.")
                continue
        else:
            wait = timedelta(days=policy.move_wait_days)
            if not cand.locally_managed and policy.move_wait_days and cand.expiry_date is not None \
                    and cand.expiry_date > today - wait:
                ready = (cand.expiry_date + wait).isoformat()
                found = ("block", f"{name} has an institutional account ({pid}) that ended on "
                                  f"{cand.expiry_date.isoformat()}, less than {policy.move_wait_days} days ago, so "
                                  f"their institutional login is still active: they cannot be moved to a new account "
                                  f"yet. Try again from {ready}.")
            else:
                merge_from.append(pid)
                advice.append(f"{name} has an old, {state} account ({pid}, group {group}; {', '.join(cand.reasons)}). "
                              "Create the new account for the new affiliation; a merge request old → new goes to the "
                              "merge worklist.")
                continue
        advice.append(found[1])
        if verdict is None:
            verdict = (found[0], found[1], pid)
    if not candidates:
        advice.append("No existing account found.")
    if verdict is not None:
        action, reason, target = verdict
        expiry, purge = renew_dates if action == "renew" and renew_dates else (None, None)
        return Decision(action, reason, target=target, advice=tuple(advice), renew_expiry=expiry, renew_purge=purge)
    if merge_from:
        return Decision("create_merge", f"Create the new account; then merge {', '.join(merge_from)} into it "
                                        "(a merge request old → new).", merge_from=tuple(merge_from),
                        advice=tuple(advice))
    reason = ("No existing account found." if not candidates else
              "Only possible matches were found: check them with the patron, then create the account.")
    return Decision("create", reason, advice=tuple(advice))


@dataclass(frozen=True)
class ExistingSearch:
    """What :func:`find_existing` found, ranked, and what the procedure says to do about it (:attr:`decision`)."""

    candidates: list[Candidate]
    blocked: bool
    advice: list[str]
    merge_from: list[str]  # old accounts to merge into the new one once it exists (seed 003's path)
    calls: int
    decision: Decision | None = None


def _candidate(record: dict[str, Any], form: PatronForm, birth: date | None, exact: bool) -> Candidate:
    from almatools.models import parse_alma_date

    reasons: list[str] = []
    score = 0
    if exact:
        score, reasons = 100, ["the primary identifier or another identifier is the same"]
    if form.email_address and email_key(form.email_address) in _emails(record):
        score = max(score, 80)
        reasons.append("same email address")
    # names compared as the duplicate linkage compares them (almatools.normalise): Đặng is Dang, Bill is
    # William, a preferred first name counts, García López is García
    mine, theirs = str(form.last_name or ""), str(record.get("last_name") or "")
    same_last = bool(surname_key(mine)) and (surname_key(mine) == surname_key(theirs)
                                             or bool(set(surname_parts(mine)) & set(surname_parts(theirs))))
    own = name_forms(given_name(form.first_name))
    same_first = bool(own & (name_forms(given_name(record.get("first_name")))
                             | name_forms(given_name(record.get("pref_first_name")))))
    their_birth = parse_alma_date(record.get("birth_date"))
    if same_last and same_first:
        if birth and their_birth == birth:
            score = max(score, 75)
            reasons.append("same name and birth date")
        else:
            score = max(score, 50)
            reasons.append("same name")
    elif same_last and given_name(record.get("first_name"))[:1] == given_name(form.first_name)[:1]:
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

    Looks the primary identifier (and each identifier the form sends, such as the University ID) up
    among every user's primary id and identifiers, then searches by email and by name, ranks what it
    finds, and decides with :func:`decide` (the result's :attr:`ExistingSearch.decision`).

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
    for value in dict.fromkeys(form.identifiers.values()):
        if value and _fold(value) != _fold(form.primary_id):
            record = client.find_user(value)  # all_unique: Alma looks every identifier type up
            if record is not None:
                found.setdefault(_fold(record["primary_id"]), _candidate(record, form, birth, exact=True))
    brief: list[str] = []
    if form.email_address and is_email(form.email_address):
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

    decision = decide(checked, ranked, policy, today=today)
    return ExistingSearch(candidates=ranked, blocked=decision.blocked, advice=list(decision.advice),
                          merge_from=list(decision.merge_from), calls=client.calls - start, decision=decision)


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
    """The outcome of :func:`register`, :func:`renew`, :func:`update_existing` or :func:`convert_to_sis`:
    ``created``, ``renewed``, ``updated``, ``unchanged``, ``converted``, ``planned`` (dry run), ``blocked`` or
    ``failed``. A ``blocked`` registration carries the :attr:`decision` (what to do instead)."""

    status: str
    primary_id: str
    message: str
    issues: list[Issue] = field(default_factory=list)
    user: dict[str, Any] | None = field(default=None, repr=False)
    merge_from: list[str] = field(default_factory=list)
    calls: int = 0
    decision: Decision | None = None


def register(client, validation: Validation, *, search: ExistingSearch | None = None,
             merge_requests: Any = None, policy: Policy | None = None,
             renew_if_offered: bool = False) -> RegistrationResult:
    """Create the patron in Alma, unless the person already has an account: the shared :func:`decide`.

    Args:
        client: an :class:`~almatools.client.AlmaClient` (a dry-run client records the writes instead).
        validation: the result of :func:`validate`.
        search: the result of :func:`find_existing` for this same form, if staff ran it; otherwise it is
            run here (the same search and decision the form and the bulk CSV use).
        merge_requests: path of the merge-request CSV (see :func:`record_merge_request`). Without it, the
            result's message tells staff which accounts to have merged.
        policy: the policy (default: the one ``validation`` was checked against).
        renew_if_offered: when the decision is to renew the person's existing account, renew it
            (:func:`renew`) instead of only offering it.

    Returns:
        A :class:`RegistrationResult`: ``created`` (POST, then a GET confirmed it), ``planned`` (dry run),
        ``blocked`` (the person has an account: :attr:`RegistrationResult.decision` says what to do),
        ``renewed``/``unchanged`` (``renew_if_offered``) or ``failed`` (the form, or Alma refused; nothing
        created). With ``search`` given: two calls for a creation.
    """
    from almatools.errors import AlmaError

    start = client.calls
    pid = validation.form.primary_id
    policy = policy or validation.policy
    if not validation.ok or validation.record is None:
        return RegistrationResult("failed", pid, "Fix the fields marked in red first.", validation.issues)
    try:
        if search is None:
            if policy is None:
                raise ValueError("register() needs the policy: pass policy=, or a Validation from validate()")
            search = find_existing(client, validation.form, policy, today=validation.today)
        decision = search.decision
        if search.blocked:
            if decision is not None and decision.action == "renew" and renew_if_offered and policy is not None:
                done = renew(client, decision.target, policy, today=validation.today)
                return replace(done, decision=decision, calls=client.calls - start)
            message = decision.reason if decision is not None else " ".join(a for a in search.advice if a)
            return RegistrationResult("blocked", pid, message, validation.issues, calls=client.calls - start,
                                      decision=decision)
        merge_from = list(search.merge_from)
        created = client.create_user(validation.record) or {}
    except AlmaError as exc:
        return RegistrationResult("failed", pid, explain_alma_error(exc, validation.record), validation.issues,
                                  calls=client.calls - start)
    if client.dry_run:
        extra = f" A merge request {', '.join(merge_from)} → {pid} would be recorded." if merge_from else ""
        return RegistrationResult("planned", pid, f"Dry run: {pid} would be created; nothing was sent.{extra}",
                                  validation.issues, merge_from=merge_from, calls=client.calls - start,
                                  decision=decision)
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
                                  calls=client.calls - start, decision=decision)
    message = " ".join([f"Created {confirmed['primary_id']} and confirmed it in Alma.", *notes])
    return RegistrationResult("created", confirmed["primary_id"], message, validation.issues, user=confirmed,
                              merge_from=merge_from, calls=client.calls - start, decision=decision)


def renew(client, primary_id: str, policy: Policy, *, today: date | None = None) -> RegistrationResult:
    """Renew a locally managed account: a new expiration and purge date from its group's defaults.

    Alma's PUT is swap-all, so the whole record is read (GET), changed, and sent back (PUT) without its
    output-only fields; roles and the password are kept (Alma keeps roles when none are sent and an empty
    password keeps the old one, but the record's own roles are sent back anyway). The same checks as a
    registration: the account exists, is locally managed (the SIS load sets an SIS-managed account's
    dates, so a renewal here would be undone), its group is in the policy, and the new date is later.

    Returns:
        ``renewed`` (Alma's reply to the PUT shows the new dates), ``unchanged`` (already valid that long),
        ``planned`` (dry run), ``blocked`` (a check failed; the message says what to do) or ``failed``.
        Two calls.
    """
    from almatools.errors import AlmaError
    from almatools.models import parse_alma_date

    today = today or date.today()
    start = client.calls
    pid = "".join(str(primary_id or "").split())
    try:
        record = client.find_user(pid) if pid else None
    except AlmaError as exc:
        return RegistrationResult("failed", pid, explain_alma_error(exc), calls=client.calls - start)
    if record is None:
        return RegistrationResult("failed", pid, f"No account {pid} in Alma: nothing to renew.",
                                  calls=client.calls - start)
    pid = str(record.get("primary_id") or pid)
    group_code = _code(record.get("user_group"))
    if _code(record.get("account_type")) == "EXTERNAL":
        return RegistrationResult("blocked", pid, f"{pid} is SIS-managed: the SIS load sets its expiration date, so a "
                                  "renewal here would be undone. Ask the SIS office, or update the account.",
                                  user=record, calls=client.calls - start)
    dates = renewal_dates(policy, group_code, today)
    if dates is None:
        return RegistrationResult("blocked", pid, f"{pid} is in group {group_code or '(none)'}, which the policy does "
                                  "not describe: there is no default period to renew it by. Update it instead.",
                                  user=record, calls=client.calls - start)
    expiry, purge = dates
    current = parse_alma_date(record.get("expiry_date"))
    if current is not None and current >= expiry and _code(record.get("status")) != "INACTIVE":
        return RegistrationResult("unchanged", pid, f"{pid} is already valid until {current.isoformat()}, no earlier "
                                  "than a renewal would set: nothing to do.", user=record,
                                  calls=client.calls - start)
    body = strip_output_only(record)
    body["expiry_date"], body["purge_date"] = _alma_date(expiry), _alma_date(purge)
    body["status"] = {"value": "ACTIVE"}
    try:
        stored = client.put_user(pid, body) or {}
    except AlmaError as exc:
        return RegistrationResult("failed", pid, explain_alma_error(exc, body), calls=client.calls - start)
    if client.dry_run:
        return RegistrationResult("planned", pid, f"Dry run: {pid} would be renewed until {expiry.isoformat()} "
                                  f"(purge date {purge.isoformat()}); nothing was sent.", user=record,
                                  calls=client.calls - start)
    if parse_alma_date(stored.get("expiry_date")) != expiry:
        return RegistrationResult("failed", pid, f"Alma accepted the renewal but {pid} still expires on "
                                  f"{str(stored.get('expiry_date') or '(none)').rstrip('Z')}: check it in Alma.",
                                  user=stored, calls=client.calls - start)
    group = policy.group(group_code)
    return RegistrationResult("renewed", pid, f"Renewed {pid}: expiration date {expiry.isoformat()}, purge date "
                              f"{purge.isoformat()} (group {group_code}'s {group.default_expiry_days} days plus "
                              f"{policy.retention_days} days' retention).", user=stored, calls=client.calls - start)


def update_existing(client, primary_id: str, validation: Validation, *,
                    policy: Policy | None = None) -> RegistrationResult:
    """Update the person's existing account with the form's details instead of creating a second one.

    What the form gives replaces what the account has: names, birth date, the preferred email and phone
    (older ones stay, no longer preferred), the user group and its patron type (other statistics stay),
    and the expiration and purge dates when they are later. The account keeps its primary id, management
    (SIS or local), roles, identifiers, notes and blocks. GET, change, PUT (swap-all) without output-only
    fields. For an SIS-managed account, the next SIS load may overwrite what the SIS sends.

    Returns:
        ``updated`` (with what changed), ``unchanged``, ``planned`` (dry run) or ``failed``. Two calls.
    """
    from almatools.errors import AlmaError
    from almatools.models import parse_alma_date

    policy = policy or validation.policy
    start = client.calls
    pid = "".join(str(primary_id or "").split())
    form = validation.form
    try:
        record = client.find_user(pid) if pid else None
    except AlmaError as exc:
        return RegistrationResult("failed", pid, explain_alma_error(exc), calls=client.calls - start)
    if record is None:
        return RegistrationResult("failed", pid, f"No account {pid} in Alma: nothing to update.",
                                  calls=client.calls - start)
    pid = str(record.get("primary_id") or pid)
    body = strip_output_only(record)
    changed: list[str] = []

    def put(name: str, value: Any, label: str) -> None:
        if value not in (None, "") and body.get(name) != value:
            body[name] = value
            changed.append(label)

    for name in ("first_name", "middle_name", "last_name"):
        put(name, getattr(form, name), _LABELS.get(name, "middle name").lower())
    birth, _ = _to_date(form.birth_date)
    if birth and parse_alma_date(body.get("birth_date")) != birth:
        put("birth_date", _alma_date(birth), "birth date")
    contact = body.setdefault("contact_info", {}) or {}
    body["contact_info"] = contact
    for kind, value, type_key, type_value in (("email", form.email_address, "email_type", form.email_type or "personal"),
                                              ("phone", form.phone_number, "phone_type", "mobile")):
        if not value:
            continue
        key = "email_address" if kind == "email" else "phone_number"
        entries = [dict(e) for e in contact.get(kind) or [] if isinstance(e, dict)]
        mine = [e for e in entries if _fold(e.get(key)) == _fold(value)]
        if mine and mine[0].get("preferred") and len(mine) == 1:
            continue
        others = [dict(e, preferred=False) for e in entries if _fold(e.get(key)) != _fold(value)]
        contact[kind] = [{key: value, "preferred": True, type_key: [{"value": type_value}]}] + others
        changed.append(f"preferred {kind}")
    group = validation.group
    if group is not None and _code(record.get("user_group")) != group.code:
        body["user_group"] = {"value": group.code}
        changed.append(f"user group {group.code}")
    patron_type = policy.patron_type_for(group.code, form.affiliation) if (policy and group) else None
    if patron_type and policy is not None and policy.patron_type_of(body) != patron_type:
        stats = [s for s in body.get("user_statistic") or []
                 if _code((s or {}).get("statistic_category")) not in policy.patron_type_codes]
        body["user_statistic"] = [{"statistic_category": {"value": patron_type}}] + stats
        changed.append(f"patron type {patron_type}")
    for name, label in (("expiry_date", "expiration date"), ("purge_date", "purge date")):
        new = parse_alma_date((validation.record or {}).get(name))
        if new and (parse_alma_date(body.get(name)) or date.min) < new:
            body[name] = _alma_date(new)
            changed.append(label)
    if _code(body.get("status")) == "INACTIVE":
        body["status"] = {"value": "ACTIVE"}
        changed.append("status ACTIVE")
    if not changed:
        return RegistrationResult("unchanged", pid, f"{pid} already has these details: nothing to update.",
                                  user=record, calls=client.calls - start)
    params = {}
    if _code(record.get("account_type")) == "EXTERNAL" and any(c.startswith("user group") for c in changed):
        params["override"] = "user_group"  # staff-edited group of an external user: force it (Alma keeps it else)
    try:
        stored = client.put_user(pid, body, **params) or {}
    except AlmaError as exc:
        return RegistrationResult("failed", pid, explain_alma_error(exc, body), calls=client.calls - start)
    what = ", ".join(changed)
    if client.dry_run:
        return RegistrationResult("planned", pid, f"Dry run: {pid} would be updated ({what}); nothing was sent.",
                                  user=record, calls=client.calls - start)
    sis = (" It is SIS-managed: the next SIS load may overwrite what the SIS sends."
           if _code(record.get("account_type")) == "EXTERNAL" else "")
    return RegistrationResult("updated", pid, f"Updated {pid}: {what}.{sis}", user=stored or body,
                              calls=client.calls - start)


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
