"""Reading the records of a worklist from Alma, and verifying the merges done there."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pandas as pd

from almatools.errors import (
    AlmaConnectionError,
    AlmaError,
    AuthError,
    NotFoundError,
    QuotaExhaustedError,
)
from almatools.quality.frame import user_row

if TYPE_CHECKING:
    from almatools.client import AlmaClient
from almatools.errors import MergeError
from almatools.merge.proposals import worklist_problems
from almatools.merge.records import _LINK_FIELDS, _key, _now, _record, _text
from almatools.merge.worklist import Worklist

log = logging.getLogger(__name__)

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
