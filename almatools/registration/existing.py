"""Before creating: the search for the person's existing accounts, and the decision (create, renew,
update, add a role, or block).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import jellyfish

from almatools.normalise import email_key, given_name, is_email, name_forms, surname_key, surname_parts
from almatools.policy import Policy
from almatools.registration.validation import PatronForm, Validation, _to_date, validate

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
    score: int  # 100 exact identifier, 80 same email, 75 same name and birth date, 60 similar name and same birth
    #             date, 50 same name, 30 same last name and first initial
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
           today: date | None = None, in_sis: bool = False) -> Decision:
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

    ``in_sis``: the SIS extract has this primary identifier, and Alma has no account for the person yet.
    Seed 000 (steps 4-5) registers someone the SIS will send (newly onboarded since the last SIS run) as
    SIS-managed with the SIS's own primary identifier, so that the load matches the record and updates it:
    that is allowed, and said. A **locally managed** record under that identifier is blocked, since the
    load would then meet a local record where it expects its own.
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
    if verdict is None and in_sis:
        pid = checked.form.primary_id
        if checked.form.managed == "sis":
            advice.append(f"{pid} is in the SIS extract: this SIS-managed record keeps the SIS's identifier, so the "
                          "next SIS load matches it and updates it instead of creating a second account.")
        else:
            reason = (f"{pid} is in the SIS extract, so the SIS manages this patron: register the record as "
                      "SIS-managed (Patron has institutional record = Yes) with this same identifier, or wait for "
                      "the next SIS load to create it. The load rejects a locally managed record under its "
                      "identifier (\"User is not external\").")
            advice.append(reason)
            verdict = ("block", reason, "")
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


def _same_initial(first_name: str | None, record: dict[str, Any]) -> bool:
    mine = given_name(first_name)[:1]
    return bool(mine) and mine == given_name(record.get("first_name"))[:1]


def similar_surname(mine: str | None, theirs: str | None) -> bool:
    """Whether two surnames may be one spelled two ways: equal once folded, sharing a part (García López and
    Garcia), or close in spelling (Jaro-Winkler at least 0.88: Gonzales and Gonzalez, Smyth and Smith)."""
    a, b = surname_key(mine), surname_key(theirs)
    if not a or not b:
        return False
    return (a == b or bool(set(surname_parts(mine)) & set(surname_parts(theirs)))
            or jellyfish.jaro_winkler_similarity(a, b) >= 0.88)


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
    elif (birth and their_birth == birth and (same_first or _same_initial(form.first_name, record))
          and (same_last or similar_surname(mine, theirs))):
        # Gonzales for Gonzalez, Mary for Maria: a spelling the searches by name cannot find, but the same
        # birth date. Listed for staff to check with the patron (it does not block on its own).
        score = max(score, 60)
        reasons.append("similar name and same birth date")
    elif same_last and _same_initial(form.first_name, record):
        score = max(score, 30)
        reasons.append("same last name and first initial")
    name = " ".join(p for p in (record.get("first_name"), record.get("last_name")) if p)
    return Candidate(primary_id=str(record.get("primary_id")), name=name, user_group=_code(record.get("user_group")),
                     account_type=_code(record.get("account_type")), status=_code(record.get("status")),
                     expiry_date=parse_alma_date(record.get("expiry_date")), roles=_roles(record), score=score,
                     reasons=tuple(reasons), record=record)


def find_existing(client, form: PatronForm, policy: Policy, *, today: date | None = None,
                  max_candidates: int = 10, sis_ids: Collection[str] | None = None) -> ExistingSearch:
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
        sis_ids: the primary identifiers of the current SIS extract (see :func:`sis_identifiers`), if at
            hand: one the load will bring is created only SIS-managed, never locally managed (:func:`decide`).
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
        # Alma matches whole words: Gonzalez-Ruiz does not find Gonzalez, so each part of a compound
        # surname is searched too.
        parts = [form.last_name, *(p for p in form.last_name.replace("-", " ").split() if len(p) > 3)]
        for last in dict.fromkeys(parts if len(parts) > 2 else parts[:1]):
            brief += [e["primary_id"] for e in client.search_users(last_name=last, first_name=first,
                                                                   max_records=max_candidates)]
    if birth and form.last_name:
        # A spelling the name search cannot find (Gonzales for Gonzalez, Mary for Maria) with the same birth
        # date: the brief records of that birth date are filtered by name before any full record is read.
        own = name_forms(given_name(form.first_name))
        for e in client.search_users(birth_date=birth.isoformat(), max_records=5 * max_candidates):
            if similar_surname(form.last_name, e.get("last_name")) and (
                    own & name_forms(given_name(e.get("first_name"))) or _same_initial(form.first_name, e)):
                brief.append(e["primary_id"])
    todo = list(dict.fromkeys(pid for pid in brief if _fold(pid) not in found))[:max_candidates]
    for record in client.fetch_users(todo, on_error=lambda *_: None):
        found.setdefault(_fold(record["primary_id"]), _candidate(record, form, birth, exact=False))
    ranked = sorted(found.values(), key=lambda c: (-c.score, c.primary_id))
    ranked = [c for c in ranked if c.score > 0]

    in_sis = bool(sis_ids) and bool(form.primary_id) and (
        form.primary_id in sis_ids or form.primary_id.casefold() in sis_ids)
    decision = decide(checked, ranked, policy, today=today, in_sis=in_sis)
    return ExistingSearch(candidates=ranked, blocked=decision.blocked, advice=list(decision.advice),
                          merge_from=list(decision.merge_from), calls=client.calls - start, decision=decision)


def sis_identifiers(sis_extract: str | Path | None = "", client=None) -> frozenset[str] | None:
    """The primary identifiers of the SIS extract (case-folded, as Alma compares them), for :func:`find_existing`.

    Args:
        sis_extract: the SIS extract (the zip of Alma user XML the SIS sends); empty: on the sandbox, the
            sandbox's own extract, else none.
        client: the page's client (to find the sandbox's extract).

    Returns:
        The identifiers, or None when there is no extract to read.

    Raises:
        SourceError: the extract cannot be read.
    """
    if not sis_extract and client is not None and client.environment == "SANDBOX":
        from almatools.sandbox.files import sandbox_sis_extract

        sis_extract = sandbox_sis_extract(client) or ""
    if not sis_extract:
        return None
    from almatools.sources import load_sis

    return frozenset(str(pid).casefold() for pid in load_sis(sis_extract)["primary_id"].dropna())
