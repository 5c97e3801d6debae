"""Pairs and the worklist: the proposals and the journal of review decisions, kept in a folder.

The journal (``decisions.jsonl``) is an :class:`almatools.files.AppendLog`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from almatools.errors import (
    JournalError,
    MergeError,
)
from almatools.files import AppendLog, input_problem
from almatools.files import atomic_write as _atomic_write
from almatools.merge.checks import Check, pair_checks
from almatools.merge.records import JOURNAL_FILE, PROPOSALS_FILE, _key, _missing, _name, _now

log = logging.getLogger(__name__)

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
        problem = input_problem(source / PROPOSALS_FILE)
        if problem is not None and problem.startswith("does not exist"):
            raise MergeError(f"No merge worklist in {source} (no {PROPOSALS_FILE}).")
        if problem is not None:  # a named pipe would block the read forever, a link to /dev/zero never end
            raise MergeError(f"{source / PROPOSALS_FILE} {problem}: it should be the worklist `almatools merge-list` "
                             "wrote.")
        try:
            body = json.loads((source / PROPOSALS_FILE).read_text(encoding="utf-8-sig"))  # BOM: saved by Notepad
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
            if err.line is None:  # not a line: the journal's name holds a folder, a pipe or a device
                raise MergeError(str(err)) from None
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
