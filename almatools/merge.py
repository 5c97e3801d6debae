"""Merge worklists: from duplicate clusters to a reviewed, safe FROM → TO list.

Alma has no merge API. Staff merge one pair at a time in Admin > User Management > Merge Users: the
FROM record is deleted ("Fully Remove"), its loans, requests, fines and fees move to TO with the segments
staff choose, FROM may hold no role but Patron, and nothing can be undone. So this module only prepares
the work: :func:`propose` turns duplicate clusters (and the merge requests recorded at registration) into
FROM → TO pairs with their reasons and checks; a :class:`Worklist` keeps them in a folder with an
append-only journal of review decisions; :func:`check_with_api` re-reads the records from Alma; the
exports (:func:`export_merge_list`, :func:`export_review_workbook`, :func:`export_worklist_html`) give
the approved list, a sign-off workbook and a printable worklist with the Alma steps; :func:`verify`
confirms afterwards that every FROM is gone and every TO is still there.

Survivor order
--------------
A cluster of n records becomes n-1 pairs into one survivor (TO). Between two records the first rule
that tells them apart decides:

1. **Current SIS record**: SIS-managed (``EXTERNAL``) and its primary id is in the current SIS extract.
   The SIS keeps updating it; merged away, the next SIS load would create it again.
2. **Staff role**: holds a role other than Patron (``200``). Staff keep one account with both roles,
   and Alma refuses a FROM with any role but Patron.
3. **Newer affiliation**. Alma records no creation date, so "newer" is read from the data:
   (a) a record that is not a *past* SIS record beats one that is (a past SIS record is SIS-managed
   but the extract no longer has it: the person left, as the student record of the alum in the
   registration procedure whose new local account keeps the person); then (b) the later expiry
   date (no expiry date counts as the oldest).
4. **Most recent activity**: the later ``last_patron_activity_date`` where the data has it; then more
   loans plus requests; then more fees; then ``ACTIVE`` before ``INACTIVE``.
5. Tie: the lower primary id (ignoring case) is kept.

A cluster with two or more current SIS records is never proposed: the person has two SIS identities,
which only the SIS can fix; it is listed in :attr:`Worklist.held` for manual review.

Checks
------
Every pair carries :class:`Check` results, computed from the records (the users data, overlaid with
what :func:`check_with_api` read from Alma) and from the other pairs of the worklist. Hard checks
block approval: FROM holds only the Patron role (unknown roles fail until the API check), both
records exist, FROM is not TO, no chains (a record is never both a FROM and a TO, nor the FROM of two
pairs), not two current SIS records, FROM is not the current SIS record. Soft checks warn: FROM has
loans, requests or fees (they move), a linked or network account, TO is inactive or expired.

Folder layout of a worklist: ``proposals.json`` (written once, atomically) and ``decisions.jsonl``
(one JSON event per line, fsynced on every write; loading replays it, dropping a torn last line).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from almatools.errors import (
    AlmaConnectionError,
    AlmaError,
    AlmaToolsError,
    AuthError,
    JournalError,
    NotFoundError,
    QuotaExhaustedError,
    SourceError,
)
from almatools.files import atomic_write as _atomic_write
from almatools.files import AppendLog, safe_cell, text_cells
from almatools.quality.frame import user_row

if TYPE_CHECKING:
    from almatools.client import AlmaClient

__all__ = [
    "Check", "Pair", "Worklist", "MergeError", "propose", "pair_checks", "survivor_rank", "choose_survivor",
    "read_findings", "read_requests", "add_requests", "findings_folder", "worklist_problems", "users_from_api",
    "check_with_api", "verify",
    "segments_to_copy",
    "alma_steps", "export_merge_list", "export_review_workbook", "export_worklist_html", "export_all",
    "MERGE_LIST_COLUMNS", "DISPLAY_FIELDS", "PROPOSALS_FILE", "JOURNAL_FILE",
]

log = logging.getLogger(__name__)

PROPOSALS_FILE = "proposals.json"
JOURNAL_FILE = "decisions.jsonl"
PATRON_ROLE = "200"
MERGE_LIST_COLUMNS = ("pair_id", "cluster_id", "from_primary_id", "from_name", "to_primary_id", "to_name", "reason",
                      "checks", "note", "reviewer", "decided_at")
# The fields shown side by side in review and kept for each record of the worklist.
DISPLAY_FIELDS = ("primary_id", "first_name", "middle_name", "last_name", "birth_date", "user_group", "account_type",
                  "external_id", "record_type", "status", "expiry_date", "purge_date", "email", "emails", "phone",
                  "identifiers", "line1", "city", "postal_code", "patron_type", "statistics", "roles", "loans",
                  "requests", "fees", "last_patron_activity_date")
_NUMBERS = ("loans", "requests", "fees")
_LINK_FIELDS = ("source_link_id", "linking_id", "source_institution_code")


class MergeError(AlmaToolsError):
    """A worklist operation that cannot be done (e.g. approving a pair that fails a hard check)."""


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _key(primary_id: Any) -> str:
    """Alma compares primary ids ignoring case."""
    return _text(primary_id).casefold()


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _num(value: Any) -> float:
    if isinstance(value, Mapping):
        value = value.get("value")
    try:
        number = float(_text(value) or 0)
    except ValueError:
        return 0.0
    return 0.0 if math.isnan(number) else number


# -- records -----------------------------------------------------------------------------------------

def _record(row: Mapping[str, Any], *, source: str, in_extract: bool | None, roles_known: bool) -> dict[str, Any]:
    """A worklist record from a patron-table row (or a duplicates.csv row, with fewer fields)."""
    rec: dict[str, Any] = {name: _text(row.get(name)) for name in DISPLAY_FIELDS}
    for name in _NUMBERS:
        rec[name] = _num(row.get(name))
    rec["account_type"] = rec["account_type"].upper()
    rec["status"] = rec["status"].upper()
    linked: bool | None = None
    if any(name in row for name in _LINK_FIELDS):
        linked = any(_text(row.get(name)) for name in _LINK_FIELDS)
    rec.update(in_extract=in_extract, roles_known=roles_known, linked=linked, exists=True, source=source,
               checked_at="")
    return rec


def _missing(primary_id: str) -> dict[str, Any]:
    rec = _record({"primary_id": primary_id}, source="none", in_extract=None, roles_known=False)
    rec["exists"] = None
    return rec


def _roles(rec: Mapping[str, Any]) -> list[str]:
    return [r for r in str(rec.get("roles") or "").split(";") if r]


def _staff(rec: Mapping[str, Any]) -> bool:
    return any(r != PATRON_ROLE for r in _roles(rec))


def _sis_current(rec: Mapping[str, Any]) -> bool:
    return rec.get("account_type") == "EXTERNAL" and rec.get("in_extract") is not False


def _past_sis(rec: Mapping[str, Any]) -> bool:
    return rec.get("account_type") == "EXTERNAL" and rec.get("in_extract") is False


def _name(rec: Mapping[str, Any]) -> str:
    first, last = rec.get("first_name") or "", rec.get("last_name") or ""
    return f"{last}, {first}" if first and last else (last or first or "(no name)")


def survivor_rank(rec: Mapping[str, Any]) -> tuple:
    """The survivor-order key of a record: of two records, the one with the higher key is kept.

    Ties on the whole key go to the lower primary id (see :func:`choose_survivor`).
    """
    return (_sis_current(rec), _staff(rec), not _past_sis(rec), rec.get("expiry_date") or "",
            rec.get("last_patron_activity_date") or "", rec.get("loans", 0) + rec.get("requests", 0),
            rec.get("fees", 0), rec.get("status") == "ACTIVE")


def choose_survivor(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records in survivor order: the first is kept (TO), the others are merged into it."""
    ordered = sorted(records, key=lambda r: _key(r["primary_id"]))
    return sorted(ordered, key=survivor_rank, reverse=True)  # stable: ties keep the lower id first


def _why(to: Mapping[str, Any], frm: Mapping[str, Any]) -> str:
    """The survivor rule that puts ``to`` before ``frm``, in words."""
    t, f = to["primary_id"], frm["primary_id"]
    a, b = survivor_rank(to), survivor_rank(frm)
    if a[0] != b[0]:
        return (f"{t} is the SIS-managed record the current SIS extract still has: the SIS keeps updating it, "
                f"and if it were merged away the next SIS load would create it again.")
    if a[1] != b[1]:
        return (f"{t} holds a staff role ({', '.join(r for r in _roles(to) if r != PATRON_ROLE)}): staff keep one "
                f"account with both roles, and Alma refuses to merge away a record with any role but Patron.")
    if a[2] != b[2]:
        return (f"{t} is the account of the newer affiliation: {f} is an SIS record the current extract no longer "
                f"has (a past affiliation).")
    if a[3] != b[3]:
        return (f"{t} is the account of the newer affiliation: it expires later ({to['expiry_date']} against "
                f"{frm['expiry_date'] or 'no expiry date'}).")
    if a[4] != b[4]:
        return (f"{t} was active more recently ({to['last_patron_activity_date']} against "
                f"{frm['last_patron_activity_date'] or 'no activity'}).")
    if a[5] != b[5]:
        return f"{t} has more loans and requests ({a[5]:g} against {b[5]:g}), so less has to move."
    if a[6] != b[6]:
        return f"{t} carries more fees ({a[6]:.2f} against {b[6]:.2f}), so less has to move."
    if a[7] != b[7]:
        return f"{t} is active and {f} is not."
    return f"The two records are equal on every survivor rule; the one with the lower primary id ({t}) is kept."


# -- checks ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """One precondition of a merge pair.

    Attributes:
        name: a stable id, e.g. ``from_patron_only``.
        hard: a failed hard check blocks approval; a soft one is a warning to read.
        ok: whether the pair passes.
        message: what it means, and what to do, in a librarian's words.
        checked: False when the facts to check are not at hand yet (no users source: the roles or the
            existence of a record are unknown). Such a check is neither passed nor failed: it says "not
            checked", and approval waits for the API check.
    """

    name: str
    hard: bool
    ok: bool
    message: str
    checked: bool = True


def pair_checks(frm: Mapping[str, Any], to: Mapping[str, Any], *,
                conflicts: Iterable[tuple[str, str, str]] = ()) -> list[Check]:
    """The checks of merging ``frm`` into ``to``.

    Args:
        frm, to: worklist records (see :data:`DISPLAY_FIELDS`; plus ``exists``, ``in_extract``,
            ``roles_known``, ``linked``).
        conflicts: other pairs of the worklist that share a record with this one in a way that makes a
            chain, as ``(pair_id, primary_id, role)`` with role ``FROM`` or ``TO`` in that other pair.
    """
    f, t = frm["primary_id"], to["primary_id"]
    checks: list[Check] = []

    def add(name: str, hard: bool, ok: bool, good: str, bad: str) -> None:
        checks.append(Check(name, hard, ok, good if ok else bad))

    def unchecked(name: str, message: str) -> None:
        checks.append(Check(name, True, False, message, checked=False))

    add("not_self", True, _key(f) != _key(t), "FROM and TO are two different records.",
        f"FROM and TO are the same record ({f}): a record cannot be merged into itself. Reject this pair.")
    missing, unknown = [], []
    for role, rec in (("FROM", frm), ("TO", to)):
        if rec.get("api_error"):
            missing.append(f"Alma could not give {role} {rec['primary_id']} ({rec['api_error']}): look it up in Alma "
                           "by hand, or run the API check again")
        elif rec.get("exists") is False:
            missing.append(f"{role} {rec['primary_id']} is no longer in Alma (merged or deleted already?)")
        elif rec.get("exists") is None:
            unknown.append(f"{role} {rec['primary_id']} is not in the users data")
    if missing or not unknown:
        add("both_exist", True, not missing, "Both records exist.", "; ".join(missing + unknown) + ".")
    else:
        unchecked("both_exist", f"Not checked: no users source ({'; '.join(unknown)}). Run the API check to "
                  "confirm the records exist before approving.")
    others = [r for r in _roles(frm) if r != PATRON_ROLE]
    if not frm.get("roles_known"):
        unchecked("from_patron_only", f"Not checked: no users source, so the roles of FROM {f} are not known; "
                  "run the API check before approving. Alma refuses to merge away a record with any role but "
                  "Patron.")
    else:
        fix = ("give TO the same roles in Alma (staff keep one account with both roles), remove them from FROM, and "
               "run the API check again" if _sis_current(to) or _staff(to) else
               "swap the direction so that the record with the roles is kept, or move the roles to TO in Alma and run "
               "the API check again")
        add("from_patron_only", True, not others, "FROM holds no role but Patron.",
            f"FROM {f} holds staff roles ({', '.join(others)}), and Alma refuses to merge away a record with any role "
            f"but Patron: {fix}.")
    both_sis = _sis_current(frm) and _sis_current(to)
    add("one_sis_identity", True, not both_sis, "Not two current SIS records.",
        f"Both {f} and {t} are SIS-managed records the current SIS extract still has: the person has two SIS "
        "identities. Only the SIS can fix that; ask the SIS office, and do not merge here.")
    add("from_not_current_sis", True, both_sis or not _sis_current(frm),
        "FROM is not the current SIS record.",
        f"FROM {f} is the SIS-managed record the current SIS extract still has: if it were merged away, the next "
        "SIS load would create it again. Swap the direction so that it is kept.")
    chain = []
    for pair_id, primary_id, role in conflicts:
        chain.append(f"{primary_id} is also the {role} of pair {pair_id}")
    add("no_chain", True, not chain, "No other pair merges these records.",
        "; ".join(chain) + ". Merge every record of a person straight into one survivor: swap or reject one of "
        "the pairs.")
    moving = [f"{frm[n]:g} {n}" if n != "fees" else f"fees of {frm[n]:.2f}" for n in _NUMBERS if frm.get(n)]
    add("from_fulfillment", False, not moving, "FROM has no loans, requests or fees.",
        f"FROM {f} has {', '.join(moving)}: they will move to {t}. Tell the patron if it matters.")
    linked = [rec["primary_id"] for rec in (frm, to) if rec.get("linked")]
    add("linked_account", False, not linked, "Neither record is a linked or network account.",
        f"{' and '.join(linked)} is a linked or network account (it has a source institution or linking id): "
        "for such accounts Alma may not move loans and requests. Check in Alma before merging.")
    expired = bool(to.get("expiry_date")) and to["expiry_date"] < date.today().isoformat()
    usable = to.get("status", "ACTIVE") in ("", "ACTIVE") and not expired
    add("to_usable", False, usable, "TO is active and not expired.",
        f"TO {t} is {'inactive' if to.get('status') not in ('', 'ACTIVE') else 'expired'}: after the merge the "
        "patron keeps an account they cannot use. Extend or reactivate it.")
    return checks


# -- pairs and the worklist --------------------------------------------------------------------------

@dataclass(frozen=True)
class Pair:
    """A FROM → TO proposal with its review state, as the worklist sees it now.

    Attributes:
        pair_id: stable id in the worklist (``P0001``…).
        cluster_id: the duplicate cluster ("" for a registration request).
        source: ``duplicates``, ``registration`` or ``duplicates+registration``.
        from_id, to_id: the record merged away (deleted) and the record kept, in the current direction.
        reason: why this direction, in words.
        match_probability, evidence: from the duplicate finder.
        decision: ``proposed``, ``approved`` or ``rejected``.
        reviewer, decided_at: who made the last decision, and when.
        notes: the reviewers' notes, oldest first.
        swapped: the direction is the other way round from the proposal.
        merged: after :func:`verify`: True done, False not done, None not verified.
        verify_message: what :func:`verify` found.
        checks: the checks in the current direction.
    """

    pair_id: str
    cluster_id: str
    source: str
    from_id: str
    to_id: str
    reason: str
    match_probability: float | None
    evidence: str
    decision: str
    reviewer: str
    decided_at: str
    notes: tuple[str, ...]
    swapped: bool
    merged: bool | None
    verify_message: str
    checks: tuple[Check, ...]

    @property
    def hard_failures(self) -> list[Check]:
        """The failed hard checks (approval is refused while there are any)."""
        return [c for c in self.checks if c.hard and not c.ok and c.checked]

    @property
    def not_checked(self) -> list[Check]:
        """The hard checks that could not be made yet (no users source): approval waits for the API check."""
        return [c for c in self.checks if not c.checked]

    @property
    def warnings(self) -> list[Check]:
        """The failed soft checks."""
        return [c for c in self.checks if not c.hard and not c.ok]

    @property
    def approvable(self) -> bool:
        return not self.hard_failures and not self.not_checked

    @property
    def status(self) -> str:
        """``proposed``, ``approved``, ``rejected``, ``blocked`` (approved, but a hard check fails since),
        ``done`` or ``not done`` (approved and verified)."""
        if self.decision == "approved":
            if self.merged is True:
                return "done"
            if self.merged is False:
                return "not done"
            return "approved" if self.approvable else "blocked"
        return self.decision


def _brief(err: BaseException) -> str:
    text = " ".join(str(err).split()) or err.__class__.__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _check_body(body: Any, path: Path) -> None:
    """Refuse a ``proposals.json`` whose shape is not the one :meth:`Worklist.save` writes, with what is wrong."""
    def bad(what: str) -> MergeError:
        return MergeError(f"{path} is damaged or was edited by hand: {what}. Restore it from a backup, or run "
                          "`almatools merge-list --replace` to start over.")
    if not isinstance(body, dict):
        raise bad(f"it holds a {type(body).__name__}, not a worklist")
    if not isinstance(body.get("pairs"), list):
        raise bad("it has no list of pairs")
    if not isinstance(body.get("records"), dict) or not all(isinstance(v, dict) for v in body["records"].values()):
        raise bad("it has no table of records")
    if body.get("held") is not None and not isinstance(body["held"], list):
        raise bad("'held' is not a list")
    seen: set[str] = set()
    for n, pair in enumerate(body["pairs"], 1):
        if not isinstance(pair, dict):
            raise bad(f"pair {n} is not an object")
        for key in ("pair_id", "from_id", "to_id"):
            if not isinstance(pair.get(key), str) or not pair[key].strip():
                raise bad(f"pair {n} has no {key}")
        if pair["pair_id"] in seen:
            raise bad(f"pair id {pair['pair_id']} appears twice")
        seen.add(pair["pair_id"])


@dataclass
class _State:
    from_id: str
    to_id: str
    decision: str = "proposed"
    reviewer: str = ""
    decided_at: str = ""
    notes: list[str] = field(default_factory=list)
    swapped: bool = False
    merged: bool | None = None
    verify_message: str = ""
    approved_as: tuple[str, str] | None = None  # the FROM and TO the approval named (its journal event)


class Worklist:
    """Merge proposals and their review, kept in a folder.

    Every decision is written to the journal (and fsynced) before it takes effect, so a dead kernel
    loses nothing: :meth:`load` replays the journal and the review resumes where it stopped. Build
    one with :func:`propose`, or reopen one with :meth:`load`.
    """

    def __init__(self, proposals: list[dict[str, Any]], records: Mapping[str, dict[str, Any]],
                 held: list[dict[str, Any]] | None = None, *, created_at: str | None = None) -> None:
        self._proposals = {p["pair_id"]: dict(p) for p in proposals}
        self._records = {_key(k): dict(v) for k, v in records.items()}
        self.held: list[dict[str, Any]] = list(held or [])
        self.created_at = created_at or _now()
        self.folder: Path | None = None
        self._state = {pid: _State(p["from_id"], p["to_id"]) for pid, p in self._proposals.items()}
        self._facts: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        counts = pd.Series([p.status for p in self.pairs()], dtype="object").value_counts().to_dict()
        return f"Worklist({len(self)} pairs {counts}, held={len(self.held)}, folder={str(self.folder)!r})"

    def __len__(self) -> int:
        return len(self._proposals)

    # -- persistence -----------------------------------------------------------------------------

    @staticmethod
    def exists(folder: Path | str) -> bool:
        """Whether ``folder`` holds a worklist."""
        return (Path(folder) / PROPOSALS_FILE).is_file()

    def save(self, folder: Path | str, *, replace: bool = False) -> Worklist:
        """Keep this worklist in ``folder`` from now on (proposals and the journal so far).

        Args:
            folder: created if missing.
            replace: overwrite a worklist already there (its decisions are lost).

        Raises:
            MergeError: the folder already holds a worklist and ``replace`` is false.
        """
        target = Path(folder)
        if Worklist.exists(target) and not replace:
            raise MergeError(f"{target} already holds a merge worklist: open it with Worklist.load({str(target)!r}) "
                             "to resume its review, or choose another folder.")
        body = {"version": 1, "created_at": self.created_at, "pairs": list(self._proposals.values()),
                "records": self._records, "held": self.held}
        # The journal first: a crash in between must never pair old decisions with new proposals.
        lines = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in self._events)
        _atomic_write(target / JOURNAL_FILE, lines.encode("utf-8"))
        _atomic_write(target / PROPOSALS_FILE, json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8"))
        self.folder = target
        return self

    @classmethod
    def load(cls, folder: Path | str) -> Worklist:
        """Reopen a worklist: read its proposals and replay its journal.

        A torn last line of the journal (the machine died in the middle of a write) is dropped, and the
        file cut back to its last complete line; every earlier decision is kept.

        Raises:
            MergeError: no worklist in ``folder``, or a journal line other than the last is damaged.
        """
        source = Path(folder)
        try:
            body = json.loads((source / PROPOSALS_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise MergeError(f"No merge worklist in {source} (no {PROPOSALS_FILE}).") from err
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
            raise MergeError(f"{source / PROPOSALS_FILE} is damaged: {err}") from err
        _check_body(body, source / PROPOSALS_FILE)
        worklist = cls(body["pairs"], body["records"], body.get("held"), created_at=body.get("created_at"))
        journal = AppendLog(source / JOURNAL_FILE, sort_keys=False)
        try:
            for number, event in journal.numbered():
                try:
                    worklist._apply(event)
                except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
                    raise MergeError(f"{journal.path}, line {number}, is damaged or was edited by hand "
                                     f"({_brief(err)}); the decisions after it cannot be trusted. Restore the "
                                     "file from a backup.") from None
                worklist._events.append(event)
        except JournalError as err:
            raise MergeError(f"{journal.path}, line {err.line}, is damaged or was edited by hand; the decisions "
                             "after it cannot be trusted. Restore the file from a backup.") from None
        journal.repair()  # the kit's torn-tail policy: a whole last event is kept, a torn one cut off
        worklist.folder = source
        return worklist

    def _write(self, events: list[dict[str, Any]]) -> None:
        """Journal events durably, then apply them."""
        for event in events:
            event.setdefault("at", _now())
        if self.folder is not None:
            AppendLog(self.folder / JOURNAL_FILE, sort_keys=False).extend(events)
        for event in events:
            self._apply(event)
            self._events.append(event)

    def _apply(self, event: Mapping[str, Any]) -> None:
        op = event.get("op")
        if op == "facts":
            self._facts[_key(event["primary_id"])] = dict(event["facts"])
            return
        state = self._state.get(event.get("pair_id", ""))
        if state is None:
            log.warning("journal event for an unknown pair ignored: %s", event)
            return
        if op in ("approve", "reject", "reopen"):
            state.decision = {"approve": "approved", "reject": "rejected", "reopen": "proposed"}[op]
            state.approved_as = (str(event.get("from", "")), str(event.get("to", ""))) if op == "approve" else None
            state.reviewer, state.decided_at = event.get("reviewer", ""), event.get("at", "")
            state.merged, state.verify_message = None, ""
        elif op == "swap":
            state.from_id, state.to_id = state.to_id, state.from_id
            state.swapped = not state.swapped
            state.decision, state.reviewer = "proposed", event.get("reviewer", "")
            state.decided_at = event.get("at", "")
            state.merged, state.verify_message = None, ""
        elif op == "note":
            state.notes.append(f"{event.get('text', '')} ({event.get('reviewer', '')}, {event.get('at', '')[:10]})")
        elif op == "verify":
            state.merged, state.verify_message = bool(event["merged"]), event.get("message", "")
        else:
            log.warning("unknown journal event ignored: %s", event)

    # -- reading ---------------------------------------------------------------------------------

    @property
    def pair_ids(self) -> list[str]:
        return list(self._proposals)

    def record(self, primary_id: str) -> dict[str, Any]:
        """A record as the checks see it: the users data, overlaid with what the API check read."""
        key = _key(primary_id)
        base = self._records.get(key) or _missing(primary_id)
        return {**base, **self._facts.get(key, {})}

    def _conflicts(self) -> dict[str, list[tuple[str, str, str]]]:
        """For each pair, the other non-rejected pairs that make a chain with it."""
        uses: dict[str, list[tuple[str, str]]] = {}
        for pid, state in self._state.items():
            if state.decision != "rejected":
                uses.setdefault(_key(state.from_id), []).append((pid, "FROM"))
                uses.setdefault(_key(state.to_id), []).append((pid, "TO"))
        result: dict[str, list[tuple[str, str, str]]] = {}
        for pid, state in self._state.items():
            found = [(other, state.from_id, role) for other, role in uses.get(_key(state.from_id), []) if other != pid]
            found += [(other, state.to_id, role) for other, role in uses.get(_key(state.to_id), [])
                      if other != pid and role == "FROM"]
            result[pid] = found
        return result

    def _pair(self, pid: str, conflicts: list[tuple[str, str, str]]) -> Pair:
        prop, state = self._proposals[pid], self._state[pid]
        reason = prop["reason"]
        if state.swapped:
            reason = f"Direction swapped in review. The proposal was the other way round: {reason}"
        checks = pair_checks(self.record(state.from_id), self.record(state.to_id), conflicts=conflicts)
        probability = prop.get("match_probability")
        return Pair(pid, prop.get("cluster_id", ""), prop.get("source", ""), state.from_id, state.to_id, reason,
                    probability, prop.get("evidence", ""), state.decision, state.reviewer, state.decided_at,
                    tuple(state.notes), state.swapped, state.merged, state.verify_message, tuple(checks))

    def pair(self, pair_id: str) -> Pair:
        """One pair as it stands now.

        Raises:
            KeyError: no such pair.
        """
        if pair_id not in self._proposals:
            raise KeyError(f"No pair {pair_id} in this worklist.")
        return self._pair(pair_id, self._conflicts()[pair_id])

    def pairs(self, *, status: str | None = None) -> list[Pair]:
        """All pairs in worklist order (or those of one :attr:`Pair.status`)."""
        conflicts = self._conflicts()
        result = [self._pair(pid, conflicts[pid]) for pid in self._proposals]
        return [p for p in result if status is None or p.status == status]

    def decisions(self) -> dict[str, int]:
        """How many pairs are ``proposed``, ``approved`` and ``rejected`` (cheap: no checks are run)."""
        counts = {"proposed": 0, "approved": 0, "rejected": 0}
        for state in self._state.values():
            counts[state.decision] += 1
        return counts

    def next_pending(self, after: str | None = None) -> str | None:
        """The id of the first undecided pair after ``after`` (wrapping round), or None when all are decided."""
        ids = self.pair_ids
        start = ids.index(after) + 1 if after in self._proposals else 0
        for pid in ids[start:] + ids[:start]:
            if self._state[pid].decision == "proposed":
                return pid
        return None

    def to_frame(self) -> pd.DataFrame:
        """One row per pair: ids, names, status, reason, failed checks, decision and verification."""
        rows = []
        for p in self.pairs():
            frm, to = self.record(p.from_id), self.record(p.to_id)
            rows.append({
                "pair_id": p.pair_id, "cluster_id": p.cluster_id, "status": p.status, "source": p.source,
                "from_primary_id": p.from_id, "from_name": _name(frm), "to_primary_id": p.to_id, "to_name": _name(to),
                "match_probability": p.match_probability, "reason": p.reason,
                "hard_failures": "; ".join(c.message for c in p.hard_failures),
                "warnings": "; ".join(c.message for c in p.warnings), "evidence": p.evidence,
                "not_checked": "; ".join(c.message for c in p.not_checked),
                "note": " | ".join(p.notes), "reviewer": p.reviewer, "decided_at": p.decided_at,
                "verified": p.verify_message,
            })
        columns = ["pair_id", "cluster_id", "status", "source", "from_primary_id", "from_name", "to_primary_id",
                   "to_name", "match_probability", "reason", "hard_failures", "warnings", "evidence", "note",
                   "reviewer", "decided_at", "verified", "not_checked"]
        return pd.DataFrame(rows, columns=columns)

    # -- decisions -------------------------------------------------------------------------------

    def _need(self, pair_id: str, reviewer: str) -> None:
        if pair_id not in self._proposals:
            raise MergeError(f"No pair {pair_id} in this worklist.")
        if not str(reviewer or "").strip():
            raise MergeError("Say who reviews: every decision is signed with the reviewer's name.")

    def approve(self, pair_id: str, *, reviewer: str, note: str | None = None) -> Pair:
        """Approve a pair in its current direction.

        Raises:
            MergeError: the pair fails a hard check (the message says which and what to do).
        """
        self._need(pair_id, reviewer)
        pair = self.pair(pair_id)
        if not pair.approvable:
            raise MergeError(f"Pair {pair_id} ({pair.from_id} → {pair.to_id}) cannot be approved: "
                             + " ".join(c.message for c in pair.hard_failures + pair.not_checked))
        events = [{"op": "approve", "pair_id": pair_id, "reviewer": reviewer, "from": pair.from_id, "to": pair.to_id}]
        if note:
            events.append({"op": "note", "pair_id": pair_id, "reviewer": reviewer, "text": note})
        self._write(events)
        return self.pair(pair_id)

    def reject(self, pair_id: str, *, reviewer: str, note: str | None = None) -> Pair:
        """Reject a pair: it will not be merged."""
        self._need(pair_id, reviewer)
        state = self._state[pair_id]
        events = [{"op": "reject", "pair_id": pair_id, "reviewer": reviewer, "from": state.from_id, "to": state.to_id}]
        if note:
            events.append({"op": "note", "pair_id": pair_id, "reviewer": reviewer, "text": note})
        self._write(events)
        return self.pair(pair_id)

    def swap(self, pair_id: str, *, reviewer: str) -> Pair:
        """Swap FROM and TO; the pair goes back to ``proposed`` and its checks are run again."""
        self._need(pair_id, reviewer)
        state = self._state[pair_id]
        self._write([{"op": "swap", "pair_id": pair_id, "reviewer": reviewer, "from": state.to_id,
                      "to": state.from_id}])
        return self.pair(pair_id)

    def reopen(self, pair_id: str, *, reviewer: str) -> Pair:
        """Take a decision back: the pair is ``proposed`` again."""
        self._need(pair_id, reviewer)
        self._write([{"op": "reopen", "pair_id": pair_id, "reviewer": reviewer}])
        return self.pair(pair_id)

    def note(self, pair_id: str, text: str, *, reviewer: str) -> Pair:
        """Add a note to a pair (kept with the reviewer's name and the date)."""
        self._need(pair_id, reviewer)
        if not str(text or "").strip():
            raise MergeError("The note is empty.")
        self._write([{"op": "note", "pair_id": pair_id, "reviewer": reviewer, "text": str(text).strip()}])
        return self.pair(pair_id)

    def add_facts(self, facts: Mapping[str, Mapping[str, Any]]) -> None:
        """Record what Alma says about records now (see :func:`check_with_api`), keyed by primary id."""
        if facts:
            self._write([{"op": "facts", "primary_id": pid, "facts": dict(f)} for pid, f in facts.items()])

    def add_verification(self, results: Iterable[tuple[str, bool, str]]) -> None:
        """Record (pair_id, merged, message) results (see :func:`verify`)."""
        events = [{"op": "verify", "pair_id": pid, "merged": bool(done), "message": msg} for pid, done, msg in results]
        if events:
            self._write(events)


# -- proposals ---------------------------------------------------------------------------------------

def worklist_problems(worklist: Worklist) -> list[str]:
    """What makes a worklist unsafe to act on, each in one sentence (empty: nothing).

    A pair whose FROM and TO are the same record; a FROM or TO that is not one of the records the
    proposals were made from (an id edited to a typo would otherwise read "gone" in Alma, i.e. done);
    an approved pair whose FROM or TO is not the one the approval named; a ``proposals.csv`` whose pairs
    or statuses differ from the proposals (it is a list to read, never an input).
    """
    problems: list[str] = []
    for pid, state in worklist._state.items():
        frm, to = state.from_id, state.to_id
        if _key(frm) == _key(to):
            problems.append(f"pair {pid}: FROM and TO are the same record ({frm})")
            continue
        for role, value in (("FROM", frm), ("TO", to)):
            if _key(value) not in worklist._records:
                problems.append(f"pair {pid}: {role} {value!r} is not one of the records the pairs were proposed for")
        if state.decision == "approved" and state.approved_as is not None and \
                (_key(state.approved_as[0]), _key(state.approved_as[1])) != (_key(frm), _key(to)):
            problems.append(f"pair {pid} was approved as {state.approved_as[0]} → {state.approved_as[1]} but now "
                            f"reads {frm} → {to}")
    if worklist.folder is not None and (worklist.folder / "proposals.csv").is_file():
        problems.extend(_csv_edits(worklist, worklist.folder / "proposals.csv"))
    return problems


def _csv_edits(worklist: Worklist, path: Path) -> list[str]:
    """Differences between ``proposals.csv`` (written with the proposals, all ``proposed``) and the proposals."""
    from almatools.files import csv_records

    found: list[str] = []
    listed: set[str] = set()
    try:
        for n, row in csv_records(path, unescape=True):
            if n == 0:
                continue
            if isinstance(row, str):
                found.append(f"{path.name} record {n}: {row}")
                continue
            pid = row.get("pair_id", "")
            listed.add(pid)
            proposal = worklist._proposals.get(pid)
            if proposal is None:
                found.append(f"{path.name} lists a pair {pid!r} the worklist does not have")
                continue
            for column, key in (("from_primary_id", "from_id"), ("to_primary_id", "to_id")):
                if column in row and _key(row[column]) != _key(proposal[key]):
                    found.append(f"{path.name}, pair {pid}: {column} reads {row[column]!r}, the proposal "
                                 f"{proposal[key]!r}")
            if row.get("status", "proposed") not in ("proposed", "blocked"):
                found.append(f"{path.name}, pair {pid}: status {row['status']!r} (decisions are made in the review "
                             "notebook, never in proposals.csv)")
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        found.append(f"{path.name} cannot be read ({_brief(err)})")
    missing = [p for p in worklist._proposals if p not in listed]
    if missing and not found:
        found.append(f"{path.name} no longer lists pair(s) {', '.join(missing[:5])}")
    if found:
        found.append(f"{path.name} is a list to read, not an input: restore it with `almatools merge-list --replace` "
                     "(before any review) or delete it")
    return found


def read_requests(source: Path | str | pd.DataFrame | None) -> pd.DataFrame:
    """Merge requests recorded at registration (see :func:`almatools.registration.record_merge_request`).

    A missing file means no requests.
    """
    from almatools.registration import MERGE_REQUEST_COLUMNS

    if source is None:
        return pd.DataFrame(columns=list(MERGE_REQUEST_COLUMNS), dtype="object")
    if isinstance(source, pd.DataFrame):
        frame = source
    else:
        path = Path(source)
        if not path.exists():
            return pd.DataFrame(columns=list(MERGE_REQUEST_COLUMNS), dtype="object")
        frame = _read_kit_csv(path)
    missing = {"from_primary_id", "to_primary_id"} - set(frame.columns)
    if missing:
        raise SourceError(f"The merge requests lack the columns {sorted(missing)}; expected {MERGE_REQUEST_COLUMNS}.")
    for column in MERGE_REQUEST_COLUMNS:
        if column not in frame.columns:
            frame = frame.assign(**{column: ""})
    return frame


def _read_kit_csv(path: Path) -> pd.DataFrame:
    """A CSV file the kit wrote (findings, duplicates, merge requests), its cells' escaping undone; a file that
    cannot be read raises :class:`SourceError` naming it."""
    from almatools.files import unsafe_frame

    try:
        return unsafe_frame(pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig"))
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, OSError) as err:
        raise SourceError(f"{path} is not a readable CSV file: {_brief(err)}") from None


def read_findings(folder: Path | str) -> tuple[pd.DataFrame, set[str]]:
    """The duplicate clusters of a findings folder (``almatools quality --out DIR``) and the SIS-managed
    records its findings say the current SIS extract no longer has (``STALE_SIS_MISSING``).

    Returns:
        (clusters, stale_ids): ``duplicates.csv`` as a DataFrame, and the primary ids of past SIS records.

    Raises:
        SourceError: no readable ``duplicates.csv`` in the folder.
    """
    base = Path(folder)
    path = base / "duplicates.csv"
    if not path.is_file():
        raise SourceError(f"No duplicates.csv in {base}: run `almatools quality --users SRC --sis SRC --out {base}` "
                          "first, or point to the folder it wrote.")
    clusters = _read_kit_csv(path)
    missing = {"cluster_id", "primary_id"} - set(clusters.columns)
    if missing:
        raise SourceError(f"{path} lacks the columns {sorted(missing)}.")
    stale: set[str] = set()
    findings = base / "findings.csv"
    if findings.is_file():
        frame = _read_kit_csv(findings)
        rule = "rule_id" if "rule_id" in frame.columns else "rule" if "rule" in frame.columns else None
        if rule and "primary_id" in frame.columns:
            stale = set(frame.loc[frame[rule] == "STALE_SIS_MISSING", "primary_id"])
    return clusters, stale


def _rows_by_key(frame: pd.DataFrame | None, keys: set[str]) -> dict[str, dict[str, Any]]:
    if frame is None or frame.empty or "primary_id" not in frame.columns:
        return {}
    ids = frame["primary_id"].astype("string").fillna("").str.strip().str.casefold()
    picked = frame[ids.isin(keys).to_numpy()]
    return {_key(row["primary_id"]): row for row in picked.to_dict("records")}


def propose(clusters: pd.DataFrame, users: pd.DataFrame | None = None, sis_ids: Iterable[str] | None = None, *,
            requests: Path | str | pd.DataFrame | None = None, pairs: pd.DataFrame | None = None,
            stale_ids: Iterable[str] | None = None, folder: Path | str | None = None) -> Worklist:
    """Turn duplicate clusters (and registration's merge requests) into a worklist of FROM → TO pairs.

    Args:
        clusters: one row per record with ``cluster_id`` and ``primary_id`` (``result.clusters`` of the
            duplicate finder, or ``duplicates.csv``); ``match_probability`` and ``evidence`` are used
            when present, and the name, group and account type when ``users`` lacks the record.
        users: the patron table (:func:`almatools.quality.frame.users_frame`): roles, dates, counts.
            Without it, roles are unknown and every pair needs the API check before approval.
        sis_ids: primary ids in the current SIS extract. Without it (and without ``stale_ids``) every
            SIS-managed record counts as current, which is the cautious reading.
        requests: merge requests recorded at registration (CSV path or DataFrame).
        pairs: ``result.pairs`` of the duplicate finder, for pair-level evidence.
        stale_ids: when the extract is not at hand: SIS-managed records the extract no longer has.
        folder: keep the worklist there at once (see :meth:`Worklist.save`).
    """
    requests_frame = read_requests(requests)
    needed = {_key(v) for v in clusters["primary_id"]} | {_key(v) for v in requests_frame["from_primary_id"]}
    needed |= {_key(v) for v in requests_frame["to_primary_id"]}
    needed.discard("")
    in_sis = {_key(v) for v in sis_ids} if sis_ids is not None else None
    stale = {_key(v) for v in stale_ids} if stale_ids is not None else None

    def in_extract(key: str) -> bool | None:
        if in_sis is not None:
            return key in in_sis
        return None if stale is None else key not in stale

    user_rows = _rows_by_key(users, needed)
    roles_known = users is not None and "roles" in users.columns
    records: dict[str, dict[str, Any]] = {}
    for key, row in user_rows.items():
        records[key] = _record(row, source="users", in_extract=in_extract(key), roles_known=roles_known)
    for row in clusters.to_dict("records"):
        key = _key(row["primary_id"])
        if key and key not in records:
            records[key] = _record(row, source="clusters", in_extract=in_extract(key), roles_known=False)

    evidence: dict[frozenset[str], tuple[float | None, str]] = {}
    if pairs is not None and not pairs.empty:
        for row in pairs.to_dict("records"):
            evidence[frozenset((_key(row["primary_id_l"]), _key(row["primary_id_r"])))] = (
                _num(row.get("match_probability")), _text(row.get("evidence")))

    proposals: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    by_pair: dict[frozenset[str], dict[str, Any]] = {}
    cluster_of: dict[str, str] = {}
    grouped = {str(cid): g for cid, g in clusters.groupby(clusters["cluster_id"].astype(str), sort=True)}
    for cid in sorted(grouped, key=lambda c: (len(c), c)):
        rows = {}
        for row in grouped[cid].to_dict("records"):
            rows.setdefault(_key(row["primary_id"]), row)
        rows.pop("", None)
        if len(rows) < 2:
            continue
        members = [records[k] for k in rows]
        current = [m["primary_id"] for m in members if _sis_current(m)]
        if len(current) > 1:
            held.append({"cluster_id": cid, "primary_ids": [m["primary_id"] for m in members],
                         "reason": f"Two or more SIS-managed records the current extract still has "
                                   f"({', '.join(current)}): the person has two SIS identities. Ask the SIS office; "
                                   "do not merge."})
            continue
        ordered = choose_survivor(members)
        survivor = ordered[0]
        for frm in ordered[1:]:
            pair_key = frozenset((_key(frm["primary_id"]), _key(survivor["primary_id"])))
            row = rows[_key(frm["primary_id"])]
            probability, why = evidence.get(pair_key, (None, ""))
            if probability is None and _text(row.get("match_probability")):
                probability = _num(row.get("match_probability"))
            proposal = {"pair_id": "", "cluster_id": cid, "source": "duplicates", "from_id": frm["primary_id"],
                        "to_id": survivor["primary_id"], "reason": _why(survivor, frm),
                        "match_probability": probability, "evidence": why or _text(row.get("evidence"))}
            proposals.append(proposal)
            by_pair[pair_key] = proposal
        for k in rows:
            cluster_of[k] = cid

    for row in requests_frame.to_dict("records"):
        f, t = _text(row["from_primary_id"]), _text(row["to_primary_id"])
        fk, tk = _key(f), _key(t)
        if not fk or not tk:
            continue
        when = _text(row.get("requested_at"))
        said = f"Merge request from registration{f' ({when})' if when else ''}: {_text(row.get('reason'))}".rstrip(": ")
        if fk == tk:
            held.append({"cluster_id": "", "primary_ids": [f], "reason": f"A merge request asks to merge {f} into "
                         "itself; nothing to do."})
            continue
        if fk in cluster_of and cluster_of[fk] == cluster_of.get(tk):
            # Staff asked at registration for the old account into the new one: the new account is the
            # cluster's survivor, whatever the ranking would have chosen.
            cid = cluster_of[fk]
            members = [p for p in proposals if p["cluster_id"] == cid]
            if members and _key(members[0]["to_id"]) != tk:
                ranked = members[0]["to_id"]  # the survivor the ranking chose
                for p in members:
                    del by_pair[frozenset((_key(p["from_id"]), _key(p["to_id"])))]
                    p["from_id"] = ranked if _key(p["from_id"]) == tk else p["from_id"]
                    p["to_id"] = t
                    p["reason"] = f"Kept {t}, the account the registration merge request names."
                    by_pair[frozenset((_key(p["from_id"]), _key(p["to_id"])))] = p
            target = by_pair[frozenset((fk, tk))]
            target["reason"] += f" {said}."
            target["source"] = "duplicates+registration"
            continue
        if frozenset((fk, tk)) in by_pair:  # the same request twice
            continue
        for key, pid in ((fk, f), (tk, t)):
            records.setdefault(key, _missing(pid))
        if _sis_current(records[fk]) and _sis_current(records[tk]):
            held.append({"cluster_id": "", "primary_ids": [f, t], "reason": f"{said}. But both are SIS-managed "
                         "records the current extract still has (two SIS identities): ask the SIS office."})
            continue
        proposal = {"pair_id": "", "cluster_id": "", "source": "registration", "from_id": f, "to_id": t,
                    "reason": said + ".", "match_probability": None, "evidence": ""}
        proposals.append(proposal)
        by_pair[frozenset((fk, tk))] = proposal

    for number, proposal in enumerate(proposals, 1):
        proposal["pair_id"] = f"P{number:04d}"
    used = {_key(p["from_id"]) for p in proposals} | {_key(p["to_id"]) for p in proposals}
    worklist = Worklist(proposals, {k: v for k, v in records.items() if k in used}, held)
    if folder is not None:
        worklist.save(folder)
    return worklist


def add_requests(worklist: Worklist, requests: Path | str | pd.DataFrame | None,
                 users: pd.DataFrame | None = None) -> list[str]:
    """Bring merge requests recorded since the worklist was made into it (a resumed review).

    Registration (notebook 01) keeps appending requests to its file while a worklist is under review.
    Each request whose two records are not already paired, and not already held, becomes a new
    ``registration`` pair at the end of the list (``P00NN`` numbering goes on); every decision made so far
    is kept. A request for two records of one duplicate cluster is already covered by that cluster's
    pairs. The worklist's folder (when it has one) is updated at once.

    Args:
        worklist: the resumed worklist.
        requests: the merge-request CSV (or a DataFrame); a missing file means none.
        users: the patron table, for the new records (else they are read by the API check).

    Returns:
        The ids of the pairs added (empty when there was nothing new).
    """
    frame = read_requests(requests)
    if frame.empty:
        return []
    paired = {frozenset((_key(p["from_id"]), _key(p["to_id"]))) for p in worklist._proposals.values()}
    cluster_of: dict[str, str] = {}
    for proposal in worklist._proposals.values():
        if proposal.get("cluster_id"):
            for pid in (proposal["from_id"], proposal["to_id"]):
                cluster_of[_key(pid)] = str(proposal["cluster_id"])
    held = {frozenset(_key(v) for v in h.get("primary_ids", [])) for h in worklist.held}
    keys = {_key(v) for v in frame["from_primary_id"]} | {_key(v) for v in frame["to_primary_id"]}
    user_rows = _rows_by_key(users, keys - {""})
    roles_known = users is not None and "roles" in users.columns
    number = max((int(pid[1:]) for pid in worklist._proposals if pid[1:].isdigit()), default=0)
    added: list[str] = []
    for row in frame.to_dict("records"):
        f, t = _text(row["from_primary_id"]), _text(row["to_primary_id"])
        fk, tk = _key(f), _key(t)
        pair_key = frozenset((fk, tk))
        if not fk or not tk or fk == tk or pair_key in paired or pair_key in held:
            continue
        if fk in cluster_of and cluster_of[fk] == cluster_of.get(tk):
            continue
        for key, pid in ((fk, f), (tk, t)):
            if key not in worklist._records:
                worklist._records[key] = (_record(user_rows[key], source="users", in_extract=None,
                                                  roles_known=roles_known) if key in user_rows else _missing(pid))
        when = _text(row.get("requested_at"))
        said = f"Merge request from registration{f' ({when})' if when else ''}: {_text(row.get('reason'))}".rstrip(": ")
        number += 1
        pair_id = f"P{number:04d}"
        worklist._proposals[pair_id] = {"pair_id": pair_id, "cluster_id": "", "source": "registration",
                                        "from_id": f, "to_id": t, "reason": said + ".", "match_probability": None,
                                        "evidence": ""}
        worklist._state[pair_id] = _State(f, t)
        paired.add(pair_key)
        added.append(pair_id)
    if added and worklist.folder is not None:
        body = {"version": 1, "created_at": worklist.created_at, "pairs": list(worklist._proposals.values()),
                "records": worklist._records, "held": worklist.held}
        # Only the proposals change: the journal keeps every decision, and new pair ids never clash with it.
        _atomic_write(worklist.folder / PROPOSALS_FILE, json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8"))
    return added


def findings_folder(findings_dir: Path | str | None, *, out_dir: Path | str, client: AlmaClient) -> Path | None:
    """The findings folder to propose from.

    A given ``findings_dir`` is used as it is. Otherwise, on the sandbox, the quality analysis is run on
    the sandbox's users (and its SIS extract, when its data folder is on this machine) into ``out_dir``,
    once: a later call reuses that output. Otherwise (production Alma) None: the caller should ask for a
    findings folder.
    """
    if findings_dir:
        return Path(findings_dir)
    out = Path(out_dir)
    if (out / "duplicates.csv").is_file():
        return out
    if client.environment != "SANDBOX":
        return None
    from almatools.policy import load_policy
    from almatools.quality import analyse, write_outputs
    from almatools.sources import load_sources

    policy = load_policy(None)
    loaded = load_sources("", "", policy=policy, client=client)
    write_outputs(analyse(loaded.users, loaded.sis, policy), out)
    return out


# -- Alma --------------------------------------------------------------------------------------------

def _fetch(client: AlmaClient, primary_id: str, **kwargs: Any) -> dict | AlmaError | None:
    """The user whose *primary id* is ``primary_id``, None, or the error when Alma could not give it.

    Alma looks ids up among all unique identifiers, so after a merge that copied identifiers the FROM
    id may find the TO user: only a record with that primary id counts.
    """
    try:
        user = client.get_user(primary_id, **kwargs)
    except NotFoundError:
        return None
    except (QuotaExhaustedError, AuthError, AlmaConnectionError):
        raise  # nothing more can be read: stop
    except AlmaError as err:  # this one record cannot be read; the others may
        log.warning("Alma could not give user %s: %s", primary_id, err)
        return err
    return user if _key(user.get("primary_id")) == _key(primary_id) else None


def _facts(user: Mapping[str, Any] | AlmaError | None) -> dict[str, Any]:
    if user is None:
        return {"exists": False, "source": "api", "checked_at": _now()}
    if isinstance(user, AlmaError):
        return {"api_error": str(user), "source": "api", "checked_at": _now()}
    row = user_row(user)
    row["last_patron_activity_date"] = _text(user.get("last_patron_activity_date"))[:10]
    row.update({name: user.get(name) for name in _LINK_FIELDS})
    rec = _record(row, source="api", in_extract=None, roles_known=True)
    rec.pop("in_extract")
    rec["checked_at"] = _now()
    return rec


def _map(client: AlmaClient, func, ids: list[str], progress: bool | str) -> Iterator:
    bar = None
    if progress and ids:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(ids), desc=progress if isinstance(progress, str) else "records", unit="record")
    try:
        with ThreadPoolExecutor(max_workers=client.workers, thread_name_prefix="alma-merge") as pool:
            for item in pool.map(func, ids):
                if bar is not None:
                    bar.update(1)
                yield item
    finally:
        if bar is not None:
            bar.close()


def users_from_api(client: AlmaClient, primary_ids: Iterable[str], *, progress: bool | str = False) -> pd.DataFrame:
    """The patron table of some users read from Alma now, with loans, requests and fees counted.

    Besides the patron-table columns it has ``last_patron_activity_date`` and the linked-account fields
    ``source_link_id``, ``linking_id``, ``source_institution_code``. Users Alma no longer has are left out.
    """
    from almatools.quality.frame import users_frame

    ids = sorted({_text(i) for i in primary_ids} - {""})
    client.check_budget(len(ids))
    rows = []
    for user in _map(client, lambda pid: _fetch(client, pid, expand="loans,requests,fees"), ids, progress):
        if isinstance(user, dict):
            row = user_row(user)
            row["last_patron_activity_date"] = _text(user.get("last_patron_activity_date"))[:10]
            row.update({name: _text(user.get(name)) for name in _LINK_FIELDS})
            rows.append(row)
    frame = users_frame(rows, rows=True)
    extra = pd.DataFrame([{k: r[k] for k in ("last_patron_activity_date", *_LINK_FIELDS)} for r in rows],
                         columns=["last_patron_activity_date", *_LINK_FIELDS], dtype="string")
    return pd.concat([frame, extra], axis=1)


def check_with_api(worklist: Worklist, client: AlmaClient, *, progress: bool | str = False) -> int:
    """Read every record of the undecided and approved pairs from Alma and re-run the checks on what it says.

    Roles, existence, loans, requests and fees (``expand``), status, expiry and linked-account fields
    replace what the users data said. The results go to the worklist's journal.

    Returns:
        How many records were read.
    """
    ids: dict[str, str] = {}
    for pair in worklist.pairs():
        if pair.decision != "rejected" and pair.merged is not True:
            ids.setdefault(_key(pair.from_id), pair.from_id)
            ids.setdefault(_key(pair.to_id), pair.to_id)
    order = list(ids.values())
    client.check_budget(len(order))
    users = _map(client, lambda pid: _fetch(client, pid, expand="loans,requests,fees"), order, progress)
    worklist.add_facts({pid: _facts(user) for pid, user in zip(order, users)})
    return len(order)


def verify(worklist: Worklist, client: AlmaClient, *, progress: bool | str = False) -> pd.DataFrame:
    """After the merges were done in Alma: check that every approved FROM is gone and its TO still exists.

    Each approved pair is marked done or not done in the journal. A worklist edited into something unsafe
    (:func:`worklist_problems`) is refused first: an id edited to a typo is "gone" from Alma, which must
    never read as done.

    Raises:
        MergeError: the worklist has problems (listed in the message).

    Returns:
        One row per approved pair: ``pair_id``, ``from_primary_id``, ``to_primary_id``, ``from_gone``,
        ``to_exists``, ``done``, ``message``.
    """
    problems = worklist_problems(worklist)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise MergeError(f"The worklist was edited into something unsafe, nothing was checked in Alma: {shown}.")
    approved = [p for p in worklist.pairs() if p.decision == "approved"]
    ids = sorted({pid for p in approved for pid in (p.from_id, p.to_id)}, key=_key)
    client.check_budget(len(ids))
    found = dict(zip(ids, _map(client, lambda pid: _fetch(client, pid), ids, progress)))
    rows, results = [], []
    for p in approved:
        gone, kept = found[p.from_id] is None, isinstance(found[p.to_id], dict)
        failed = [str(e) for e in (found[p.from_id], found[p.to_id]) if isinstance(e, AlmaError)]
        if failed:
            gone = kept = False
            message = f"Could not check in Alma ({'; '.join(failed)}): verify again later."
        elif gone and kept:
            message = f"Done: {p.from_id} is gone and {p.to_id} is there."
        elif not kept and gone:
            message = f"Both {p.from_id} and {p.to_id} are gone: check Alma at once (deleted, or merged elsewhere?)."
        elif not kept:
            message = (f"{p.to_id} (TO) is gone but {p.from_id} (FROM) is still there: merged the wrong way round? "
                       "Check Alma at once.")
        else:
            message = f"Not done: {p.from_id} (FROM) is still in Alma. Merge it into {p.to_id}, then verify again."
        rows.append({"pair_id": p.pair_id, "from_primary_id": p.from_id, "to_primary_id": p.to_id, "from_gone": gone,
                     "to_exists": kept, "done": gone and kept, "message": message})
        results.append((p.pair_id, gone and kept, message))
    worklist.add_verification(results)
    return pd.DataFrame(rows, columns=["pair_id", "from_primary_id", "to_primary_id", "from_gone", "to_exists", "done",
                                       "message"])


# -- exports -----------------------------------------------------------------------------------------

def _split(value: str) -> set[str]:
    return {v for v in str(value or "").split(";") if v}


def segments_to_copy(frm: Mapping[str, Any], to: Mapping[str, Any]) -> list[tuple[str, bool, str]]:
    """Which of FROM's segments to copy in the Merge Users screen: (segment, copy, why)."""
    new_contacts = (_split(frm.get("emails")) - _split(to.get("emails"))) | (
        {frm.get("phone")} - {to.get("phone"), "", None})
    if frm.get("line1") and frm.get("line1") != to.get("line1"):
        new_contacts.add(frm["line1"])
    new_ids = _split(frm.get("identifiers")) - _split(to.get("identifiers"))
    new_stats = _split(frm.get("statistics")) - _split(to.get("statistics"))
    return [
        ("Contact information", bool(new_contacts),
         f"FROM has {', '.join(sorted(new_contacts))}, which TO lacks." if new_contacts else "TO has FROM's contacts."),
        ("Identifiers", bool(new_ids),
         f"keeps FROM's {', '.join(sorted(new_ids))} working for the patron." if new_ids
         else "FROM has no identifiers that TO lacks."),
        ("Notes", True, "notes carry the record's history; copying an empty list does no harm."),
        ("Statistics", bool(new_stats),
         f"FROM has {', '.join(sorted(new_stats))}." if new_stats else "TO has FROM's statistical categories."),
        ("Blocks", False, "unless FROM has a manual block that still applies (fines and fees move with the merge "
                          "anyway)."),
        ("Attachments, proxy-for, demerits", False, "unless FROM has any that still matter."),
    ]


def alma_steps(pair: Pair, frm: Mapping[str, Any], to: Mapping[str, Any]) -> list[str]:
    """The steps of one merge in Alma's Merge Users screen, written from the pair's data."""
    def who(rec: Mapping[str, Any]) -> str:
        kind = "SIS-managed" if rec.get("account_type") == "EXTERNAL" else "locally managed"
        return f"{_name(rec)}, {rec.get('user_group') or 'no group'}, {kind}"

    steps = [
        "Open Admin > User Management > Merge Users.",
        f"From user (merged away and deleted): search {pair.from_id} and check that it is {who(frm)}.",
        f"To user (kept): search {pair.to_id} and check that it is {who(to)}.",
        "Segments to copy: " + "; ".join(f"{name}: {'copy' if copy else 'leave'} ({why})"
                                         for name, copy, why in segments_to_copy(frm, to)),
    ]
    if to.get("account_type") == "EXTERNAL":
        steps.append("Tick \"Copy all segments as internal\": TO is SIS-managed, and the next SIS load replaces "
                     "its external segments, so only internal copies survive it.")
    else:
        steps.append("\"Copy all segments as internal\" is not needed: TO is locally managed, so all its segments "
                     "are internal already.")
    moving = [f"{frm[n]:g} {n}" for n in ("loans", "requests") if frm.get(n)]
    if frm.get("fees"):
        moving.append(f"fees of {frm['fees']:.2f}")
    if moving:
        steps.append(f"FROM's {', '.join(moving)} move to TO: check them on TO afterwards.")
    if frm.get("linked") or to.get("linked"):
        steps.append("A linked or network account is involved: Alma does not move loans and requests of fulfillment "
                     "network accounts. Check them after the merge.")
    steps.append("Merge, and confirm. It cannot be undone. Then tick Done on this sheet; the verify step "
                 "confirms it in Alma.")
    return steps


def _checks_text(pair: Pair) -> str:
    failed = [f"{'FAILED' if c.hard else 'warning'} {c.name}: {c.message}" for c in pair.checks if not c.ok]
    return "; ".join(failed) or "all checks passed"


def _mergeable(worklist: Worklist) -> list[Pair]:
    pairs = worklist.pairs()
    blocked = [p.pair_id for p in pairs if p.status == "blocked"]
    if blocked:
        log.warning("approved pairs left out because a hard check fails since: %s", ", ".join(blocked))
    return [p for p in pairs if p.decision == "approved" and p.approvable]


def _out(folder: Path | str | None, worklist: Worklist) -> Path:
    target = Path(folder) if folder is not None else worklist.folder
    if target is None:
        raise MergeError("Say where to write: the worklist has no folder yet.")
    target.mkdir(parents=True, exist_ok=True)
    return target


def export_merge_list(worklist: Worklist, folder: Path | str | None = None) -> Path:
    """``merge_list.csv``: only the approved pairs that pass every hard check, in worklist order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MERGE_LIST_COLUMNS)
    for p in _mergeable(worklist):
        frm, to = worklist.record(p.from_id), worklist.record(p.to_id)
        writer.writerow([safe_cell(v) for v in (p.pair_id, p.cluster_id, p.from_id, _name(frm), p.to_id, _name(to),
                                                p.reason, _checks_text(p), " | ".join(p.notes), p.reviewer,
                                                p.decided_at)])
    path = _out(folder, worklist) / "merge_list.csv"
    _atomic_write(path, buffer.getvalue().encode("utf-8"))
    return path


def export_review_workbook(worklist: Worklist, folder: Path | str | None = None) -> Path:
    """``merge_review.xlsx`` for sign-off: every pair with its status (header frozen, filters, sized
    columns), the held clusters, and a sign-off sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = "Pairs"
    frame = worklist.to_frame()
    fills = {"approved": "E2F0D9", "done": "C6E0B4", "rejected": "EDEDED", "blocked": "F8CBAD", "not done": "F8CBAD"}

    def table(ws, columns: list[str], rows: list[list[Any]]) -> None:
        ws.append(columns)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append(["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in row])
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = ws.dimensions
        for index, column in enumerate(columns, 1):
            longest = max([len(str(column))] + [len(str(r[index - 1] or "")) for r in rows])
            ws.column_dimensions[get_column_letter(index)].width = min(60, max(8, longest + 2))
            if longest > 60:
                for (cell,) in ws.iter_rows(min_row=2, min_col=index, max_col=index):
                    cell.alignment = Alignment(wrap_text=True, vertical="top")

    table(sheet, list(frame.columns), frame.astype("object").values.tolist())
    status_col = list(frame.columns).index("status") + 1
    for (cell,) in sheet.iter_rows(min_row=2, min_col=status_col, max_col=status_col):
        if cell.value in fills:
            cell.fill = PatternFill("solid", fgColor=fills[cell.value])
    held = book.create_sheet("Held")
    table(held, ["cluster_id", "primary_ids", "reason"],
          [[h.get("cluster_id", ""), "; ".join(h.get("primary_ids", [])), h.get("reason", "")] for h in worklist.held])
    sign = book.create_sheet("Sign-off")
    counts = frame["status"].value_counts().to_dict()
    for row in (["Merge worklist", str(worklist.folder or "")], ["Prepared", worklist.created_at],
                ["Pairs", len(frame)], *[[f"  {k}", v] for k, v in sorted(counts.items())],
                ["Held for manual review", len(worklist.held)],
                ["Reviewed by", ", ".join(sorted(set(frame["reviewer"]) - {""}))],
                ["Signed off by (name)", ""], ["Date", ""], ["Signature", ""]):
        sign.append(row)
    sign.column_dimensions["A"].width, sign.column_dimensions["B"].width = 26, 50
    for (cell,) in sign.iter_rows(min_col=1, max_col=1):
        cell.font = Font(bold=True)
    buffer = io.BytesIO()
    for sheet in book.worksheets:
        text_cells(sheet)  # names, notes and the reviewer are data: never formulas
    book.save(buffer)
    path = _out(folder, worklist) / "merge_review.xlsx"
    _atomic_write(path, buffer.getvalue())
    return path


def export_worklist_html(worklist: Worklist, folder: Path | str | None = None) -> Path:
    """``merge_worklist.html``: a printable sheet with the Alma steps for every approved pair."""
    from jinja2 import Environment, PackageLoader

    env = Environment(loader=PackageLoader("almatools", "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True)
    items = []
    for p in _mergeable(worklist):
        frm, to = worklist.record(p.from_id), worklist.record(p.to_id)
        steps = alma_steps(p, frm, to)  # open, FROM, TO, segments, "as internal", then the rest
        items.append({"pair": p, "from_name": _name(frm), "to_name": _name(to), "before": steps[:3],
                      "segments": segments_to_copy(frm, to), "internal": steps[4], "after": steps[5:],
                      "warnings": p.warnings})
    html = env.get_template("merge_worklist.html").render(
        items=items, created=_now(), folder=str(worklist.folder or ""), total=len(worklist))
    path = _out(folder, worklist) / "merge_worklist.html"
    _atomic_write(path, html.encode("utf-8"))
    return path


def export_all(worklist: Worklist, folder: Path | str | None = None) -> dict[str, Path]:
    """All three exports; returns their paths by name."""
    return {"merge_list": export_merge_list(worklist, folder), "review": export_review_workbook(worklist, folder),
            "worklist": export_worklist_html(worklist, folder)}
