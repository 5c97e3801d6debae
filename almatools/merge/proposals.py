"""From duplicate clusters, findings and merge requests to a proposed worklist."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from almatools.errors import (
    SourceError,
)
from almatools.files import atomic_write as _atomic_write
from almatools.files import input_problem

if TYPE_CHECKING:
    from almatools.client import AlmaClient
from almatools.merge.records import (
    PROPOSALS_FILE,
    _key,
    _missing,
    _num,
    _record,
    _sis_current,
    _text,
    _why,
    choose_survivor,
)
from almatools.merge.worklist import Worklist, _brief, _State


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
        where = f" in {source}" if not isinstance(source, pd.DataFrame) else ""
        raise SourceError(f"The merge requests{where} lack the columns {sorted(missing)}; expected "
                          f"{', '.join(MERGE_REQUEST_COLUMNS)}.")
    for column in MERGE_REQUEST_COLUMNS:
        if column not in frame.columns:
            frame = frame.assign(**{column: ""})
    return frame


def _read_kit_csv(path: Path) -> pd.DataFrame:
    """A CSV file the kit wrote (findings, duplicates, merge requests), its cells' escaping undone; a file that
    cannot be read raises :class:`SourceError` naming it."""
    from almatools.files import csv_hint, unsafe_frame

    problem = input_problem(path)
    if problem is not None:  # a named pipe would block pandas forever, a link to /dev/zero never end
        raise SourceError(f"{path} {problem}")
    if path.stat().st_size == 0:
        raise SourceError(f"{path} is empty (0 bytes): it should have at least the header row the kit writes")
    try:
        frame = unsafe_frame(pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig"))
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, OSError) as err:
        hint = csv_hint(path) or ("save it as 'CSV UTF-8 (Comma delimited)'" if isinstance(err, UnicodeDecodeError)
                                  else "")
        raise SourceError(f"{path} is not a readable CSV file: {_brief(err)}" + (f"; {hint}" if hint else "")) from None
    hint = csv_hint(path, list(frame.columns))
    if hint:
        raise SourceError(f"{path} is not a readable CSV file: {hint}")
    return frame


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
    problem = input_problem(path)
    if problem is not None and problem != "does not exist" and os.path.lexists(path):
        raise SourceError(f"{path} {problem}: it should be the duplicates.csv `almatools quality` wrote.")
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
        if frozenset((fk, tk)) in by_pair:  # the same request twice, or its reverse
            earlier = by_pair[frozenset((fk, tk))]
            if _key(earlier["from_id"]) == tk and "asks the reverse" not in earlier["reason"]:
                # Two requests that contradict each other (A → B, then B → A): the pair keeps the first
                # direction, and says so, so the reviewer checks which account survives before approving.
                earlier["reason"] += (f" Another merge request asks the reverse ({f} → {t}): check which account "
                                      "should survive before approving (Swap turns the pair round).")
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
