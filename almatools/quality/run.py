"""One data-quality run: the rules and the duplicate linkage over a patron table, and its output files.

:func:`analyse` returns a :class:`QualityResult`; :func:`write_outputs` writes it as

* ``findings.csv``: one row per finding (:data:`~almatools.quality.rules.FINDING_COLUMNS`), the
  duplicate pairs included as ``DUPLICATE`` findings;
* ``duplicates.csv``: one row per record in a *likely* duplicate cluster (:data:`DUPLICATE_COLUMNS`);
* ``possible_duplicates.csv``: one row per *possible* pair for review (:data:`POSSIBLE_COLUMNS`);
* ``summary.json`` and ``summary.txt``: counts by rule, severity and user group, the sources, timings;
* ``load_errors.csv``, only when a source had bad records that were skipped.

Each file is written under a temporary name and renamed when complete, so a run that fails never
leaves half a report behind. Every text cell is made safe for spreadsheets (:func:`almatools.files.safe_cell`:
no cell written from data is a formula); the kit's readers undo it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from almatools.catalog import RULES
from almatools.errors import ConfigError
from almatools.files import atomic_path, safe_frame
from almatools.normalise import ids_in
from almatools.policy import Policy
from almatools.quality.duplicates import LINKAGE_COLUMNS, find_duplicates
from almatools.quality.review import PairDecisions
from almatools.quality.rules import FINDING_COLUMNS, evaluate

__all__ = ["DUPLICATE_COLUMNS", "POSSIBLE_COLUMNS", "QualityResult", "analyse", "write_outputs"]

log = logging.getLogger(__name__)

DUPLICATE_COLUMNS = ("cluster_id", "primary_id", "match_probability", "evidence", "other_primary_ids", "first_name",
                     "last_name", "user_group", "account_type")
POSSIBLE_COLUMNS = ("primary_id_l", "primary_id_r", "match_probability", "reason", "evidence", "first_name_l",
                    "last_name_l", "first_name_r", "last_name_r", "decision")
_SIS_RULES = ("STALE_SIS_MISSING", "SIS_LOCAL_SAME_ID", "SIS_LOCAL_OTHER_ID")


@dataclass
class QualityResult:
    """What :func:`analyse` found.

    Attributes:
        findings: One row per finding (:data:`~almatools.quality.rules.FINDING_COLUMNS`).
        pairs: The linked duplicate pairs: ``primary_id_l``, ``primary_id_r``, ``match_probability``,
            ``evidence``, ``cluster_id`` (empty when the linkage did not run).
        clusters: One row per record in a duplicate cluster (:data:`DUPLICATE_COLUMNS`).
        users: The patron table analysed (for showing records side by side).
        summary: Counts by rule, severity and user group, the sources and the timings (JSON-ready).
        possible: The *possible* duplicate pairs for review (:data:`POSSIBLE_COLUMNS`).
    """

    findings: pd.DataFrame
    pairs: pd.DataFrame
    clusters: pd.DataFrame
    users: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    possible: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(POSSIBLE_COLUMNS)))

    def summary_text(self) -> str:
        """The summary as a few lines of text (what ``summary.txt`` holds)."""
        s = self.summary
        lines = [f"Data-quality findings as of {s['today']} (policy: {s['policy']})",
                 f"Users: {s['users']:,}; SIS extract: "
                 + (f"{s['sis_users']:,} records" if s["sis_users"] is not None else "none given")]
        for name, src in s["sources"].items():
            if src and src.get("skipped"):
                lines.append(f"  {name}: {src['skipped']:,} bad records skipped (see load_errors.csv)")
        sev = ", ".join(f"{k} {v:,}" for k, v in s["by_severity"].items())
        lines.append(f"Findings: {s['findings']:,} on {s['records_with_findings']:,} records ({sev or 'none'})")
        for rule, n in s["by_rule"].items():
            mark = "  (not checked)" if rule in s["rules_not_checked"] else ""
            lines.append(f"  {rule:<22} {RULES[rule].severity.value:<8}{n:>8,}  {RULES[rule].title}{mark}")
        lines.append(f"Duplicates: {s['duplicate_pairs']:,} linked pairs in {s['duplicate_clusters']:,} clusters; "
                     f"{s.get('possible_pairs', 0):,} possible pairs to review"
                     if s["duplicates"] == "done" else f"Duplicates: {s['duplicates']}")
        lines.append("Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in s["timings"].items()))
        return "\n".join(lines)


def _duplicate_findings(pairs: pd.DataFrame) -> pd.DataFrame:
    rule = RULES["DUPLICATE"]
    if not len(pairs):
        return pd.DataFrame(columns=list(FINDING_COLUMNS))
    prob = [f"{p:.3f}" for p in pairs["match_probability"].astype("float64")]
    return pd.DataFrame({
        "rule_id": "DUPLICATE", "severity": rule.severity.value, "family": rule.family,
        "primary_id": pairs["primary_id_l"].astype(str).to_numpy(),
        "other_primary_id": pairs["primary_id_r"].astype(str).to_numpy(),
        "user_group": "", "account_type": "", "field": "",
        "message": [f"Probably the same person as {o} (match probability {p}; cluster {c}): {e}"
                    for o, p, c, e in zip(pairs["primary_id_r"].astype(str), prob, pairs["cluster_id"].astype(str),
                                          pairs["evidence"].astype(str))],
        "action": rule.action,
    })



def _linkage_input(users: pd.DataFrame, sis: pd.DataFrame | None) -> pd.DataFrame:
    """The records the linkage compares: the Alma users, and the SIS extract's records Alma does not hold yet
    (``_sis_only``), so a local record can be linked to the SIS's record of the same person in one run."""
    # only the columns the linkage reads (a million-row patron table is not copied whole)
    columns = [c for c in users.columns if c in LINKAGE_COLUMNS]
    frame = users[columns].assign(_sis_only=False)
    if sis is None:
        return frame
    frame["in_sis_extract"] = ids_in(users["primary_id"], sis["primary_id"])
    extra = sis[~ids_in(sis["primary_id"], users["primary_id"])].assign(_sis_only=True, in_sis_extract=True)
    extra = extra[[c for c in frame.columns if c in extra.columns]]
    return pd.concat([frame, extra], ignore_index=True) if len(extra) else frame


def _linked_sis_findings(linkage: pd.DataFrame, sis: pd.DataFrame, result: Any) -> pd.DataFrame:
    """``SIS_LOCAL_OTHER_ID``: a local record that is not in the extract, linked (likely tier) to a record the SIS
    sends under another id. The same engine and evidence as the duplicates."""
    info = _by_id(linkage, ("account_type", "in_sis_extract", "first_name", "last_name", "user_group"))
    local = set(info.index[(info["account_type"] == "INTERNAL") & ~info["in_sis_extract"].astype(bool)])
    sent = set(info.index[info["in_sis_extract"].astype(bool)])
    evidence = {frozenset((a, b)): e for a, b, e in zip(result.pairs["primary_id_l"].astype(str),
                                                        result.pairs["primary_id_r"].astype(str),
                                                        result.pairs["evidence"].astype(str))}
    cluster = dict(zip(result.clusters["primary_id"].astype(str), result.clusters["cluster_id"].astype(str)))
    rows = []
    for pair in result.linked_pairs():
        a, b = sorted(pair)
        for mine, theirs in ((a, b), (b, a)):
            if mine in local and theirs in sent and mine.casefold() != theirs.casefold():
                rows.append((mine, theirs, evidence.get(pair) or f"the duplicate linkage puts both records in "
                                                                  f"cluster {cluster.get(mine, '')}"))
    rule = RULES["SIS_LOCAL_OTHER_ID"]
    if not rows:
        return pd.DataFrame(columns=list(FINDING_COLUMNS))
    rows.sort()
    s = info.loc[[t for _, t, _ in rows]]
    names = [f"{f} {last}".strip() for f, last in zip(s["first_name"].astype(str), s["last_name"].astype(str))]
    return pd.DataFrame({
        "rule_id": rule.id, "severity": rule.severity.value, "family": rule.family,
        "primary_id": [m for m, _, _ in rows], "other_primary_id": [t for _, t, _ in rows],
        "user_group": "", "account_type": "INTERNAL", "field": "",
        "message": [f"The SIS sends this person as {t} ({n}, {g}): {e}"
                    for (_, t, e), n, g in zip(rows, names, s["user_group"].astype(str))],
        "action": rule.action,
    })


def _alma_only(result: Any, sis_only: set[str]) -> Any:
    """The linkage result without the SIS extract's own records (they are not Alma's duplicates)."""
    if not sis_only:
        return result
    pairs = result.pairs[~result.pairs["primary_id_l"].isin(sis_only) & ~result.pairs["primary_id_r"].isin(sis_only)]
    possible = result.possible[~result.possible["primary_id_l"].isin(sis_only)
                               & ~result.possible["primary_id_r"].isin(sis_only)]
    clusters = result.clusters[~result.clusters["primary_id"].isin(sis_only)]
    clusters = clusters[clusters.groupby("cluster_id")["primary_id"].transform("size") > 1]
    return replace(result, pairs=pairs.reset_index(drop=True), possible=possible.reset_index(drop=True),
                   clusters=clusters.reset_index(drop=True))


def _by_id(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``columns`` of each record's first row, indexed by its primary id as text (one lookup table)."""
    first = frame.drop_duplicates("primary_id")
    return first.set_index(first["primary_id"].astype(str))[list(columns)]


_SHOWN = ("first_name", "last_name", "user_group", "account_type")


def _cluster_table(pairs: pd.DataFrame, clusters: pd.DataFrame, info: pd.DataFrame) -> pd.DataFrame:
    """One row per clustered record: its best link's probability and evidence, and the other members."""
    if not len(clusters):
        return pd.DataFrame({c: pd.Series(dtype="float64" if c == "match_probability" else "string")
                             for c in DUPLICATE_COLUMNS})
    links = pd.concat([pairs.rename(columns={"primary_id_l": "primary_id", "primary_id_r": "other"}),
                       pairs.rename(columns={"primary_id_r": "primary_id", "primary_id_l": "other"})])
    best = links.sort_values("match_probability", ascending=False).drop_duplicates("primary_id")
    out = clusters[["cluster_id", "primary_id"]].astype(str).merge(
        best[["primary_id", "match_probability", "evidence"]].astype({"primary_id": str}), on="primary_id", how="left")
    members = out.groupby("cluster_id")["primary_id"].agg(list)
    out["other_primary_ids"] = [";".join(m for m in members[c] if m != p)
                                for c, p in zip(out["cluster_id"], out["primary_id"])]
    for col in _SHOWN:
        out[col] = out["primary_id"].map(info[col]).fillna("")
    out["match_probability"] = out["match_probability"].astype("float64")
    return out[list(DUPLICATE_COLUMNS)].astype({c: "string" for c in DUPLICATE_COLUMNS if c != "match_probability"})


def _report(frame: pd.DataFrame | None) -> dict[str, Any] | None:
    if frame is None:
        return None
    data = frame.attrs.get("load_report")
    return dict(data) if isinstance(data, dict) else {"records": len(frame)}


def analyse(users_df: pd.DataFrame, sis_df: pd.DataFrame | None, policy: Policy, *, today: date | None = None,
            duplicates: bool = True, progress: bool = False,
            decisions: PairDecisions | str | os.PathLike[str] | None = None, cache: bool = True) -> QualityResult:
    """Run every finding rule and the duplicate linkage.

    Args:
        users_df: The patron table of the Alma users (:func:`almatools.sources.load_users`).
        sis_df: The patron table of the SIS extract (:func:`almatools.sources.load_sis`); None skips the
            rules that need it.
        policy: The institution's policy.
        today: The day the analysis is "as of" (default: today).
        duplicates: Also run the duplicate linkage (:func:`almatools.quality.duplicates.find_duplicates`),
            which also finds ``SIS_LOCAL_OTHER_ID``.
        progress: Show a progress bar over the steps.
        decisions: Staff decisions on pairs (a :class:`~almatools.quality.review.PairDecisions` or its file).
        cache: Let the linkage keep and reuse its prepared records and scored pairs
            (:mod:`almatools.quality.linkage_cache`).

    Returns:
        The findings, the duplicate pairs and clusters, the possible pairs, the users and a summary.
    """
    today = today or date.today()
    users = users_df.reset_index(drop=True)
    if decisions is not None and not isinstance(decisions, PairDecisions):
        decisions = PairDecisions(decisions)
    timings: dict[str, float] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=2 + duplicates, desc="quality", unit="step")

    def step(name: str) -> None:
        if bar is not None:
            bar.set_postfix_str(name)

    started = time.monotonic()
    step("rules")
    findings = evaluate(users, sis_df, policy, today=today)
    timings["rules"] = time.monotonic() - started
    info = _by_id(users, _SHOWN)  # each record's names, group and account type, looked up by primary id
    if bar is not None:
        bar.update(1)
    pairs = pd.DataFrame(columns=["primary_id_l", "primary_id_r", "match_probability", "evidence", "cluster_id"])
    clusters = pd.DataFrame(columns=["cluster_id", "primary_id"])
    possible = pd.DataFrame(columns=list(POSSIBLE_COLUMNS))
    status, model = "not run (--no-duplicates)", {}
    if duplicates:
        step("duplicates")
        started = time.monotonic()
        linkage = _linkage_input(users, sis_df)
        result = find_duplicates(linkage, progress=progress, decisions=decisions, cache=cache)
        extra = []
        if sis_df is not None:
            extra.append(_linked_sis_findings(linkage, sis_df, result))
        result = _alma_only(result, set(linkage.loc[linkage["_sis_only"], "primary_id"].astype(str)))
        pairs, clusters, status, model = result.pairs, result.clusters, "done", result.model
        timings.update({f"linkage {k}": v for k, v in result.timings.items() if k != "total"})
        possible = _possible_table(result.possible, info, decisions)
        findings = _merge_findings(findings, [_duplicate_findings(pairs), *extra], info)
        timings["duplicates"] = time.monotonic() - started
        if bar is not None:
            bar.update(1)
    step("summary")
    table = _cluster_table(pairs, clusters, info)
    counts = findings["rule_id"].value_counts()
    not_checked = [] if sis_df is not None else list(_SIS_RULES)
    if not duplicates and sis_df is not None:
        not_checked.append("SIS_LOCAL_OTHER_ID")
    summary = {
        "today": today.isoformat(), "policy": policy.name, "users": len(users),
        "sis_users": None if sis_df is None else len(sis_df), "findings": len(findings),
        "records_with_findings": int(findings["primary_id"].nunique()),
        "by_rule": {rule: int(counts.get(rule, 0)) for rule in RULES},
        "by_severity": {k: int(v) for k, v in findings["severity"].value_counts().items()},
        "by_group": {str(k): int(v) for k, v in findings["user_group"].replace("", "(none)").value_counts().items()},
        "rules_not_checked": not_checked,
        "duplicates": status, "duplicate_pairs": len(pairs), "duplicate_clusters": int(table["cluster_id"].nunique()),
        "possible_pairs": len(possible), "linkage_model": model,
        "decisions_file": str(decisions.path) if decisions is not None else None,
        "sources": {"users": _report(users_df), "sis": _report(sis_df)},
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    if bar is not None:
        bar.update(1)
        bar.close()
    return QualityResult(findings, pairs, table, users, summary, possible)


def _possible_table(possible: pd.DataFrame, info: pd.DataFrame, decisions: PairDecisions | None) -> pd.DataFrame:
    """The possible pairs with both records' names and any staff decision, for review."""
    if not len(possible):
        return pd.DataFrame({c: pd.Series(dtype="float64" if c == "match_probability" else "string")
                             for c in POSSIBLE_COLUMNS})
    out = possible.copy()
    for side in ("l", "r"):
        for c in ("first_name", "last_name"):
            out[f"{c}_{side}"] = out[f"primary_id_{side}"].astype(str).map(info[c]).fillna("")
    out["decision"] = [(decisions.lookup(a, b) if decisions is not None else None) or ""
                       for a, b in zip(out["primary_id_l"], out["primary_id_r"])]
    return out[list(POSSIBLE_COLUMNS)].astype({c: "string" for c in POSSIBLE_COLUMNS if c != "match_probability"})


def _merge_findings(findings: pd.DataFrame, extra: list[pd.DataFrame], info: pd.DataFrame) -> pd.DataFrame:
    extra = [e for e in extra if len(e)]
    if not extra:
        return findings
    more = pd.concat(extra, ignore_index=True)
    more["user_group"] = more["primary_id"].astype(str).map(info["user_group"]).fillna("").to_numpy()
    more["account_type"] = more["primary_id"].astype(str).map(info["account_type"]).fillna("").to_numpy()
    out = pd.concat([findings, more.astype("string")], ignore_index=True)
    order = {r: i for i, r in enumerate(RULES)}
    key = out["rule_id"].map(order).to_numpy()
    out = out.iloc[np.lexsort((out["field"].to_numpy(), out["other_primary_id"].to_numpy(),
                               out["primary_id"].to_numpy(), key))]
    return out.reset_index(drop=True)


def write_outputs(result: QualityResult, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``findings.csv``, ``duplicates.csv``, ``summary.json``, ``summary.txt`` (and ``load_errors.csv``),
    all or none: the files are written under temporary names and renamed together at the end.

    Returns:
        The paths written, by file name.

    Raises:
        ConfigError: a folder stands where one of the files goes (nothing is written).
    """
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Callable[[Path], None]] = {
        "findings.csv": lambda p: safe_frame(result.findings[list(FINDING_COLUMNS)]).to_csv(p, index=False),
        "duplicates.csv": lambda p: safe_frame(result.clusters[list(DUPLICATE_COLUMNS)]).to_csv(p, index=False),
        "possible_duplicates.csv": lambda p: safe_frame(result.possible[list(POSSIBLE_COLUMNS)]).to_csv(p, index=False),
        "summary.json": lambda p: p.write_text(json.dumps(result.summary, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8"),
        "summary.txt": lambda p: p.write_text(result.summary_text() + "\n", encoding="utf-8"),
    }
    errors = [dict(e, source=name) for name, src in result.summary["sources"].items() if src
              for e in src.get("errors", [])]
    if errors:
        files["load_errors.csv"] = lambda p: safe_frame(pd.DataFrame(errors, columns=[
            "source", "file", "record", "line", "field", "reason"])).to_csv(p, index=False)
    in_the_way = [name for name in [*files, "load_errors.csv"] if (out / name).is_dir()]
    if in_the_way:
        raise ConfigError(f"{out / in_the_way[0]} is a folder: the run writes a file of that name there; move the "
                           "folder away (nothing was written)")
    # Every file is written beside its final name first and the renames come last, together: a run that
    # fails or is killed while writing leaves the last run's files as they were, never half of each.
    with ExitStack() as stack:
        staged = {name: stack.enter_context(atomic_path(out / name)) for name in files}
        for name, write in files.items():
            write(staged[name])
        if not errors:
            (out / "load_errors.csv").unlink(missing_ok=True)  # from an earlier run
    return {name: out / name for name in files}

