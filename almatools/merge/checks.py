"""The checks of a FROM → TO pair: hard ones block approval, soft ones warn."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from almatools.merge.records import _NUMBERS, PATRON_ROLE, _key, _roles, _sis_current, _staff


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
