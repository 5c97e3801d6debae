"""Staff decisions on possible duplicate pairs, kept between runs.

A reviewer marks a pair of records *same person* or *different people* (notebook 02, or
:meth:`PairDecisions.decide`). The decisions live in a journal (``pair_decisions.jsonl``, one JSON
object per line, see :class:`almatools.files.AppendLog`); the latest decision on a pair wins. The
duplicate linkage reads them (:func:`almatools.quality.duplicates.find_duplicates`): a pair marked
*different people* (twins, a parent and a child) is never proposed again and never shares a cluster;
a pair marked *same person* joins the likely tier and the merge proposals. Primary ids are compared
as Alma compares them, ignoring case.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from almatools.files import AppendLog

__all__ = ["DECISIONS_FILE", "DIFFERENT", "SAME", "PairDecisions"]

DECISIONS_FILE = "pair_decisions.jsonl"
SAME = "same"
DIFFERENT = "different"


def _key(a: str, b: str) -> tuple[str, str]:
    x, y = str(a).strip().casefold(), str(b).strip().casefold()
    return (x, y) if x <= y else (y, x)


class PairDecisions:
    """The decisions of one journal file (created on the first decision).

    Args:
        path: The journal, e.g. ``<quality output>/pair_decisions.jsonl``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.log = AppendLog(path)
        self._latest: dict[tuple[str, str], dict] = {}
        for entry in self.log.read():
            if entry.get("decision") in (SAME, DIFFERENT) and entry.get("a") and entry.get("b"):
                self._latest[_key(entry["a"], entry["b"])] = entry
            elif entry.get("decision") == "undecided" and entry.get("a") and entry.get("b"):
                self._latest.pop(_key(entry["a"], entry["b"]), None)

    @property
    def path(self) -> Path:
        return self.log.path

    def __len__(self) -> int:
        return len(self._latest)

    def lookup(self, a: str, b: str) -> str | None:
        """``"same"``, ``"different"`` or None for the pair ``a``, ``b`` (either order, any case)."""
        entry = self._latest.get(_key(a, b))
        return entry["decision"] if entry else None

    def decide(self, a: str, b: str, decision: str, *, by: str = "", note: str = "") -> None:
        """Record a decision (``"same"``, ``"different"``, or ``"undecided"`` to take one back)."""
        if decision not in (SAME, DIFFERENT, "undecided"):
            raise ValueError(f"a decision is 'same', 'different' or 'undecided', not {decision!r}")
        if _key(a, b)[0] == _key(a, b)[1]:
            raise ValueError(f"a pair needs two different records, not {a!r} twice")
        entry = {"a": str(a), "b": str(b), "decision": decision, "by": by, "note": note,
                 "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self.log.append(entry)
        if decision == "undecided":
            self._latest.pop(_key(a, b), None)
        else:
            self._latest[_key(a, b)] = entry

    def same_pairs(self) -> list[tuple[str, str]]:
        return [(e["a"], e["b"]) for e in self._latest.values() if e["decision"] == SAME]

    def different_pairs(self) -> list[tuple[str, str]]:
        return [(e["a"], e["b"]) for e in self._latest.values() if e["decision"] == DIFFERENT]
