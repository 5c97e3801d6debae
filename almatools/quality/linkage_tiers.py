"""The linkage's tiers and clusters: what keeps a scored pair out of the likely tier, staff decisions,
clusters without chains, and the result tables."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from almatools.quality.linkage_model import DEFAULT_THRESHOLD, DISPLAY_COLUMNS, MODEL, _Level, _level, _levels

# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class DuplicateResult:
    """What :func:`find_duplicates` found.

    Attributes:
        pairs: The *likely* pairs: ``primary_id_l``, ``primary_id_r``, ``match_probability``,
            ``evidence`` (what agreed, then what differed, in words) and ``cluster_id``; sorted by
            cluster and descending probability.
        clusters: One row per record in a cluster of two or more: ``cluster_id``, ``primary_id``
            and the display columns ``first_name``, ``last_name``, ``user_group``,
            ``account_type``, ``birth_date``, ``email``.
        possible: The *possible* pairs for review: ``primary_id_l``, ``primary_id_r``,
            ``match_probability``, ``evidence`` and ``reason`` (why it is not likely).
        timings: Seconds per step.
        threshold: The likely tier's threshold.
        model: The m/u values used, ``{"comparison/level": [m, u]}``, and ``"trained"`` (bool).
    """

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    possible: pd.DataFrame = field(default_factory=lambda: _pairs_frame([], "reason"))
    timings: dict[str, float] = field(default_factory=dict)
    threshold: float = DEFAULT_THRESHOLD
    model: dict[str, Any] = field(default_factory=dict)

    def linked_pairs(self) -> set[frozenset[str]]:
        """Every pair of records that share a cluster (the transitive closure of :attr:`pairs`)."""
        out: set[frozenset[str]] = set()
        for ids in self.clusters.groupby("cluster_id", sort=False)["primary_id"]:
            members = list(ids[1])
            out.update(frozenset((a, b)) for i, a in enumerate(members) for b in members[i + 1:])
        return out


def _pairs_frame(rows: list[tuple[Any, ...]], extra: str) -> pd.DataFrame:
    cols = ["primary_id_l", "primary_id_r", "match_probability", "evidence", extra]
    frame = pd.DataFrame(rows, columns=cols)
    return frame.astype({c: "string" for c in cols if c != "match_probability"} | {"match_probability": "float64"})


def _evidence(levels: dict[str, _Level], left: dict[str, str], right: dict[str, str]) -> str:
    """The evidence of a scored pair in words: what agreed, then what differed."""
    agreed, differed = [], []
    for comp in MODEL:
        level = levels[comp.name]
        if level.phrase:
            text = level.phrase.replace("{l}", left[comp.shown]).replace("{r}", right[comp.shown])
            (agreed if level.agrees else differed).append(text)
    return "; ".join(agreed + differed)


# ---------------------------------------------------------------------------------------------
# Tiers: what keeps a scored pair out of the likely tier

_STRONG = ("email", "exact"), ("identifier", "exact"), ("phone", "exact"), ("last_name", "in_email")
_NEVER = "never"


def _tier_reason(lv: dict[str, str], live_both: bool) -> str:
    """Why a pair cannot be *likely* ("" when nothing stops it; :data:`_NEVER` when it is not even possible).

    ``lv``: comparison name -> level key of the pair.
    """
    if lv["suffix"] == "differs" or lv["birth_date"] == "far":
        return _NEVER  # Jr and Sr; a parent and a child
    personal = lv["email"] == "exact" or lv["identifier"] == "exact"  # what a household does not share
    born = lv["birth_date"] in ("exact", "swap", "typo")
    if lv["first_name"] == "differs":
        # twins, spouses, siblings, a family email: different first names are two people, unless the
        # birth date and a personal email or identifier say otherwise (a nickname no table knows)
        return "the first names differ" if born and personal else _NEVER
    strong = personal or lv["phone"] == "exact" or lv["last_name"] in ("in_email", "in_middle")
    if lv["birth_date"] == "differs":
        return "the birth dates differ"
    if lv["last_name"] in ("differs", "changed") and not (strong or lv["address"] == "exact"
                                                          or (lv["middle_name"] == "exact" and born)):
        return "the surname differs and nothing but the name and birth date agrees"
    agree = [c for c in ("birth_date", "email", "phone", "address", "identifier") if lv[c] not in ("null", "else")]
    if lv["first_name"] in ("null", "initial", "initials") and not (
            strong or (born and (lv["address"] == "exact" or lv["middle_name"] == "exact"))):
        return "only an initial or no first name" if agree else _NEVER
    if not agree:
        return "only the name agrees"
    if lv["first_name"] in ("contained", "moved", "similar", "typo_short") and not (personal or born):
        return "the first names are only alike"  # siblings: Hyun and Dong-hyun
    if lv["middle_name"] == "differs" and not personal:
        return "the middle names differ"
    if lv["suffix"] == "one" and not (personal or born):
        return "a generational suffix on one record only"
    if live_both:
        return "two live SIS records (the SIS sends both)"
    return ""


def _conflict(lv: dict[str, str]) -> str:
    """Why two records cannot be one person ("" when they can), checked between every two members of a
    cluster: ``"first"`` (first names differ), ``"birth"`` or ``"suffix"``.

    Different first names or birth dates are a conflict unless the two records share a personal email
    or an identifier themselves (then the cluster is not a chain through a weak link: a preferred
    name, or a birth date typed wrong).
    """
    if lv["suffix"] == "differs":
        return "suffix"
    if lv["birth_date"] == "far":
        return "birth"
    if lv["email"] == "exact" or lv["identifier"] == "exact":
        return ""
    if lv["first_name"] == "differs":
        return "first"
    return "birth" if lv["birth_date"] == "differs" else ""


# ---------------------------------------------------------------------------------------------
# Clusters


class _Components:
    """Union-find over record positions."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for x in list(self.parent):
            out.setdefault(self.find(x), []).append(x)
        return list(out.values())


def _components(edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    uf = _Components()
    for a, b in edges:
        uf.union(a, b)
    return uf.groups()


def _consistent_clusters(edges: dict[tuple[int, int], float], conflicts: dict[tuple[int, int], str],
                         forms: dict[int, frozenset[str]], pinned: frozenset[tuple[int, int]] = frozenset()
                         ) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """Connected components of ``edges`` in which no two members conflict.

    A component holding a conflicting pair loses its weakest edge until none does (``pinned`` edges,
    pairs staff marked the same person, are never cut, and their two records never conflict). Two members whose
    first names differ (conflict kind ``"first"``) do not conflict when a third member's names (its
    first and preferred names, see ``forms``) agree with both: Hương Đặng, known as Jack, links a
    "Huong" record and a "Jack" record.

    Returns:
        The clusters, and the edges that were cut.
    """
    against: dict[int, set[int]] = {}
    for a, b in conflicts:
        against.setdefault(a, set()).add(b)
        against.setdefault(b, set()).add(a)

    def bridged(a: int, b: int, members: set[int]) -> bool:
        fa, fb = forms.get(a, frozenset()), forms.get(b, frozenset())
        return any(forms.get(m, frozenset()) & fa and forms.get(m, frozenset()) & fb for m in members - {a, b})

    def consistent(members: set[int]) -> bool:
        for a in members:
            for b in against.get(a, ()):
                if b in members and a < b:
                    kind = conflicts.get((a, b), "")
                    if (a, b) not in pinned and not (kind == "first" and bridged(a, b, members)):
                        return False
        return True

    cut: list[tuple[int, int]] = []
    clusters: list[list[int]] = []
    todo = _components(edges)
    while todo:
        group = todo.pop()
        members = set(group)
        if consistent(members):
            clusters.append(group)
            continue
        inner = {e: p for e, p in edges.items() if e[0] in members}
        cuttable = [e for e in inner if e not in pinned]
        if not cuttable:  # only staff decisions hold it together: their word stands
            clusters.append(group)
            continue
        weakest = min(cuttable, key=lambda e: (inner[e], e))
        del edges[weakest]
        cut.append(weakest)
        del inner[weakest]
        todo.extend(_components(inner) + [[m] for m in members - {x for e in inner for x in e}])
    return [c for c in clusters if len(c) > 1], cut


def _cluster_id(ids: Iterable[str]) -> str:
    key = "\x1f".join(sorted(ids))
    return "C-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]


def _tiers(users: pd.DataFrame, pred: pd.DataFrame, live: np.ndarray, threshold: float, decisions: Any,
           score_within: Callable[[list[list[int]]], tuple[pd.DataFrame, dict[int, frozenset[str]]]] | None
           ) -> DuplicateResult:
    """Sort the scored pairs into the likely and possible tiers, apply staff decisions, make clusters.

    ``score_within`` scores every two members of the larger clusters, so that a conflict between two
    records that were never a candidate pair (linked only through a third) is seen.
    """
    left = pred["unique_id_l"].astype("int64").tolist()
    right = pred["unique_id_r"].astype("int64").tolist()
    prob = pred["match_probability"].astype("float64").tolist()
    levels = _levels(pred)
    pid = users["primary_id"].astype(str).tolist()
    decided = decisions.lookup if decisions is not None else (lambda a, b: None)

    likely: dict[tuple[int, int], float] = {}
    possible: dict[tuple[int, int], tuple[float, str]] = {}
    conflicts: dict[tuple[int, int], str] = {}
    level_of: dict[tuple[int, int], dict[str, str]] = {}
    for a, b, p, lv in zip(left, right, prob, levels):
        key = (min(a, b), max(a, b))
        level_of[key] = lv
        verdict = decided(pid[a], pid[b])
        if verdict == "different":
            conflicts[key] = "decided"
            continue
        if verdict == "same":
            likely[key] = max(p, threshold)
            continue
        if kind := _conflict(lv):
            conflicts[key] = kind
        reason = _tier_reason(lv, bool(live[a] and live[b]))
        if reason == _NEVER:
            continue
        if not reason and p >= threshold:
            likely[key] = p
        else:
            possible[key] = (p, reason or "the evidence is not strong enough to be sure")
    if decisions is not None:
        index = {p.casefold(): i for i, p in enumerate(pid)}
        for a_id, b_id in decisions.same_pairs():
            a, b = index.get(a_id.casefold()), index.get(b_id.casefold())
            if a is not None and b is not None and a != b:
                likely.setdefault((min(a, b), max(a, b)), 1.0)
        for a_id, b_id in decisions.different_pairs():
            a, b = index.get(a_id.casefold()), index.get(b_id.casefold())
            if a is not None and b is not None and a != b:
                conflicts[(min(a, b), max(a, b))] = "decided"
                likely.pop((min(a, b), max(a, b)), None)
                possible.pop((min(a, b), max(a, b)), None)

    groups = [g for g in _components(likely) if len(g) > 2]
    forms: dict[int, frozenset[str]] = {}
    if groups and score_within is not None:
        inner, forms = score_within(groups)
        for a, b, lv in zip(inner["unique_id_l"].astype("int64"), inner["unique_id_r"].astype("int64"), _levels(inner)):
            if kind := _conflict(lv):
                conflicts.setdefault((min(a, b), max(a, b)), kind)
    pinned = frozenset(k for k in likely if decided(pid[k[0]], pid[k[1]]) == "same")
    clusters, cut = _consistent_clusters(dict(likely), conflicts, forms, pinned)
    for e in cut:
        possible[e] = (likely.pop(e), "split from a cluster whose members conflict")

    involved = sorted({x for e in (*likely, *possible) for x in e})
    shown_cols = sorted({comp.shown for comp in MODEL} | {"primary_id", *DISPLAY_COLUMNS})
    rows = users.loc[involved, shown_cols].astype(object).fillna("").astype(str)
    record = dict(zip(involved, rows.to_dict("records")))

    def described(e: tuple[int, int]) -> tuple[str, str, str]:
        a, b = sorted(e, key=lambda x: record[x]["primary_id"])
        lv = level_of.get(e)
        words = (_evidence({c.name: _level(c, lv[c.name]) for c in MODEL}, record[a], record[b]) if lv
                 else "marked the same person by staff")
        if lv and decided(pid[a], pid[b]) == "same":
            words = "marked the same person by staff; " + words
        return record[a]["primary_id"], record[b]["primary_id"], words

    cluster_of = {}
    for group in clusters:
        cid = _cluster_id(pid[p] for p in group)
        cluster_of.update((p, cid) for p in group)
    pair_rows = [(a, b, round(p, 6), words, cluster_of[e[0]]) for e, p in likely.items()
                 for a, b, words in (described(e),)]
    pairs = _pairs_frame(pair_rows, "cluster_id").sort_values(
        ["cluster_id", "match_probability", "primary_id_l", "primary_id_r"], ascending=[True, False, True, True],
        ignore_index=True)
    poss_rows = [(a, b, round(p, 6), words, why) for e, (p, why) in possible.items() for a, b, words in (described(e),)]
    poss = _pairs_frame(poss_rows, "reason").sort_values(
        ["match_probability", "primary_id_l", "primary_id_r"], ascending=[False, True, True], ignore_index=True)
    positions = sorted(cluster_of)
    table = pd.DataFrame({"cluster_id": [cluster_of[p] for p in positions]}, dtype="string")
    for c in ("primary_id", *DISPLAY_COLUMNS):
        table[c] = pd.array([record[p][c] for p in positions], dtype="string")
    table = table.sort_values(["cluster_id", "primary_id"], ignore_index=True)
    return DuplicateResult(pairs, table, poss, threshold=threshold)


