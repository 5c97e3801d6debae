"""Create, renew, update, convert to SIS-managed, and record merge requests; Alma's errors explained."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from almatools.policy import Policy
from almatools.registration.existing import Decision, ExistingSearch, _code, _fold, find_existing, renewal_dates
from almatools.registration.validation import _LABELS, Issue, Validation, _alma_date, _to_date, strip_output_only

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
    from almatools.errors import AlmaConnectionError, AlmaError, AuthError, DuplicateError, QuotaExhaustedError

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
    if isinstance(error, AuthError):
        return (f"Alma refused the API key: {error.message} Check ALMA_API_KEY: it needs the Users API with "
                "read/write rights (Developer Network > API keys). Nothing was sent for this patron.")
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


def _read_existing(client, primary_id: str, action: str, start: int
                   ) -> tuple[str, dict[str, Any]] | RegistrationResult:
    """The account to renew or update, read from Alma: (its primary id, the record), or the failed result."""
    from almatools.errors import AlmaError

    pid = "".join(str(primary_id or "").split())
    try:
        record = client.find_user(pid) if pid else None
    except AlmaError as exc:
        return RegistrationResult("failed", pid, explain_alma_error(exc), calls=client.calls - start)
    if record is None:
        return RegistrationResult("failed", pid, f"No account {pid} in Alma: nothing to {action}.",
                                  calls=client.calls - start)
    return str(record.get("primary_id") or pid), record


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
    found = _read_existing(client, primary_id, "renew", start)
    if isinstance(found, RegistrationResult):
        return found
    pid, record = found
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
    form = validation.form
    found = _read_existing(client, primary_id, "update", start)
    if isinstance(found, RegistrationResult):
        return found
    pid, record = found
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
