"""One data-quality run: the rules and the duplicate linkage over a patron table, and its output files.

:func:`analyse` returns a :class:`QualityResult`; :func:`write_outputs` writes it as

* ``findings.csv``: one row per finding (:data:`~almatools.quality.rules.FINDING_COLUMNS`), the
  duplicate pairs included as ``DUPLICATE`` findings;
* ``duplicates.csv``: one row per record in a duplicate cluster (:data:`DUPLICATE_COLUMNS`);
* ``summary.json`` and ``summary.txt``: counts by rule, severity and user group, the sources, timings;
* ``load_errors.csv``, only when a source had bad records that were skipped.

Each file is written under a temporary name and renamed when complete, so a run that fails never
leaves half a report behind.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from almatools.files import atomic_path
from almatools.policy import Policy
from almatools.quality.catalog import RULES
from almatools.quality.rules import FINDING_COLUMNS, evaluate

__all__ = ["DUPLICATE_COLUMNS", "QualityResult", "analyse", "write_outputs"]

log = logging.getLogger(__name__)

DUPLICATE_COLUMNS = ("cluster_id", "primary_id", "match_probability", "evidence", "other_primary_ids", "first_name",
                     "last_name", "user_group", "account_type")
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
    """

    findings: pd.DataFrame
    pairs: pd.DataFrame
    clusters: pd.DataFrame
    users: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

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
            mark = "  (not checked: no SIS extract)" if rule in s["rules_not_checked"] else ""
            lines.append(f"  {rule:<22} {RULES[rule].severity.value:<8}{n:>8,}  {RULES[rule].title}{mark}")
        lines.append(f"Duplicates: {s['duplicate_pairs']:,} linked pairs in {s['duplicate_clusters']:,} clusters"
                     if s["duplicates"] == "done" else f"Duplicates: {s['duplicates']}")
        lines.append("Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in s["timings"].items()))
        return "\n".join(lines)


def _find_duplicates() -> Callable[..., Any] | None:
    try:
        from almatools.quality.duplicates import find_duplicates
    except ImportError as err:  # the linkage needs duckdb and splink
        log.warning("duplicate linkage not available: %s", err)
        return None
    return find_duplicates


def _duplicate_findings(pairs: pd.DataFrame) -> pd.DataFrame:
    rule = RULES["DUPLICATE"]
    prob = pairs["match_probability"].astype("float64").map(lambda p: f"{p:.3f}")
    return pd.DataFrame({
        "rule_id": "DUPLICATE", "severity": rule.severity.value, "family": rule.family,
        "primary_id": pairs["primary_id_l"].to_numpy(), "other_primary_id": pairs["primary_id_r"].to_numpy(),
        "user_group": "", "account_type": "", "field": "",
        "message": ("Probably the same person as " + pairs["primary_id_r"].astype(str) + " (match probability "
                    + prob + "; cluster " + pairs["cluster_id"].astype(str) + "): "
                    + pairs["evidence"].astype(str)).to_numpy(),
        "action": rule.action,
    })


def _linked_sis_findings(users: pd.DataFrame, sis: pd.DataFrame, clusters: pd.DataFrame,
                         found: pd.DataFrame) -> pd.DataFrame:
    """``SIS_LOCAL_OTHER_ID`` for local records that the linkage puts in one cluster with a record the SIS sends
    under another id (a married name with no shared contact details, which exact evidence misses)."""
    in_sis = set(sis["primary_id"].astype(str).str.casefold())
    members = clusters[["cluster_id", "primary_id"]].astype(str)
    members = members.assign(key=members["primary_id"].str.casefold())
    kind = users.set_index(users["primary_id"].astype(str).str.casefold())["account_type"]
    kind = kind[~kind.index.duplicated()]
    members["account_type"] = members["key"].map(kind).fillna("")
    sis_side = members[members["key"].isin(in_sis)]
    local = members[(members["account_type"] == "INTERNAL") & ~members["key"].isin(in_sis)]
    pairs = local.merge(sis_side[["cluster_id", "primary_id"]], on="cluster_id", suffixes=("", "_sis"))
    known = set(zip(found["primary_id"].astype(str), found["other_primary_id"].astype(str)))
    pairs = pairs[[(a, b) not in known for a, b in zip(pairs["primary_id"], pairs["primary_id_sis"])]]
    if not len(pairs):
        return pd.DataFrame(columns=list(FINDING_COLUMNS))
    rule = RULES["SIS_LOCAL_OTHER_ID"]
    return pd.DataFrame({
        "rule_id": rule.id, "severity": rule.severity.value, "family": rule.family,
        "primary_id": pairs["primary_id"].to_numpy(), "other_primary_id": pairs["primary_id_sis"].to_numpy(),
        "user_group": "", "account_type": "INTERNAL", "field": "",
        "message": ("The SIS sends this person as " + pairs["primary_id_sis"] + ": the duplicate linkage puts "
                    "both records in cluster " + pairs["cluster_id"]).to_numpy(),
        "action": rule.action,
    })


def _cluster_table(pairs: pd.DataFrame, clusters: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
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
    info = users.drop_duplicates("primary_id").set_index(users.drop_duplicates("primary_id")["primary_id"].astype(str))
    for col in ("first_name", "last_name", "user_group", "account_type"):
        out[col] = out["primary_id"].map(info[col]).fillna("")
    out["match_probability"] = out["match_probability"].astype("float64")
    return out[list(DUPLICATE_COLUMNS)].astype({c: "string" for c in DUPLICATE_COLUMNS if c != "match_probability"})


def _report(frame: pd.DataFrame | None) -> dict[str, Any] | None:
    if frame is None:
        return None
    data = frame.attrs.get("load_report")
    return dict(data) if isinstance(data, dict) else {"records": len(frame)}


def analyse(users_df: pd.DataFrame, sis_df: pd.DataFrame | None, policy: Policy, *, today: date | None = None,
            duplicates: bool = True, progress: bool = False) -> QualityResult:
    """Run every finding rule and the duplicate linkage.

    Args:
        users_df: The patron table of the Alma users (:func:`almatools.sources.load_users`).
        sis_df: The patron table of the SIS extract (:func:`almatools.sources.load_sis`); None skips the
            rules that need it.
        policy: The institution's policy.
        today: The day the analysis is "as of" (default: today).
        duplicates: Also run the duplicate linkage (:func:`almatools.quality.duplicates.find_duplicates`).
        progress: Show a progress bar over the steps.

    Returns:
        The findings, the duplicate pairs and clusters, the users and a summary.
    """
    today = today or date.today()
    users = users_df.reset_index(drop=True)
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
    if bar is not None:
        bar.update(1)
    pairs = pd.DataFrame(columns=["primary_id_l", "primary_id_r", "match_probability", "evidence", "cluster_id"])
    clusters = pd.DataFrame(columns=["cluster_id", "primary_id"])
    status = "not run (--no-duplicates)"
    if duplicates:
        step("duplicates")
        started = time.monotonic()
        find = _find_duplicates()
        if find is None:
            status = "not available (the linkage module could not be imported)"
        else:
            result = find(users, progress=progress)
            pairs, clusters, status = result.pairs, result.clusters, "done"
            extra = [_duplicate_findings(pairs)]
            if sis_df is not None:
                extra.append(_linked_sis_findings(users, sis_df, clusters, findings))
            findings = _merge_findings(findings, extra, users)
        timings["duplicates"] = time.monotonic() - started
        if bar is not None:
            bar.update(1)
    step("summary")
    table = _cluster_table(pairs, clusters, users)
    counts = findings["rule_id"].value_counts()
    summary = {
        "today": today.isoformat(), "policy": policy.name, "users": len(users),
        "sis_users": None if sis_df is None else len(sis_df), "findings": len(findings),
        "records_with_findings": int(findings["primary_id"].nunique()),
        "by_rule": {rule: int(counts.get(rule, 0)) for rule in RULES},
        "by_severity": {k: int(v) for k, v in findings["severity"].value_counts().items()},
        "by_group": {str(k): int(v) for k, v in findings["user_group"].replace("", "(none)").value_counts().items()},
        "rules_not_checked": list(_SIS_RULES) if sis_df is None else [],
        "duplicates": status, "duplicate_pairs": len(pairs), "duplicate_clusters": int(table["cluster_id"].nunique()),
        "sources": {"users": _report(users_df), "sis": _report(sis_df)},
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    if bar is not None:
        bar.update(1)
        bar.close()
    return QualityResult(findings, pairs, table, users, summary)


def _merge_findings(findings: pd.DataFrame, extra: list[pd.DataFrame], users: pd.DataFrame) -> pd.DataFrame:
    extra = [e for e in extra if len(e)]
    if not extra:
        return findings
    more = pd.concat(extra, ignore_index=True)
    info = users.drop_duplicates("primary_id").set_index("primary_id")
    more["user_group"] = more["primary_id"].map(info["user_group"]).fillna("").to_numpy()
    more["account_type"] = more["primary_id"].map(info["account_type"]).fillna("").to_numpy()
    out = pd.concat([findings, more.astype("string")], ignore_index=True)
    order = {r: i for i, r in enumerate(RULES)}
    key = out["rule_id"].map(order).to_numpy()
    out = out.iloc[np.lexsort((out["field"].to_numpy(), out["other_primary_id"].to_numpy(),
                               out["primary_id"].to_numpy(), key))]
    return out.reset_index(drop=True)


def write_outputs(result: QualityResult, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``findings.csv``, ``duplicates.csv``, ``summary.json``, ``summary.txt`` (and ``load_errors.csv``).

    Returns:
        The paths written, by file name.
    """
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Callable[[Path], None]] = {
        "findings.csv": lambda p: result.findings.to_csv(p, index=False, columns=list(FINDING_COLUMNS)),
        "duplicates.csv": lambda p: result.clusters.to_csv(p, index=False, columns=list(DUPLICATE_COLUMNS)),
        "summary.json": lambda p: p.write_text(json.dumps(result.summary, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8"),
        "summary.txt": lambda p: p.write_text(result.summary_text() + "\n", encoding="utf-8"),
    }
    errors = [dict(e, source=name) for name, src in result.summary["sources"].items() if src
              for e in src.get("errors", [])]
    (out / "load_errors.csv").unlink(missing_ok=True)  # from an earlier run
    if errors:
        files["load_errors.csv"] = lambda p: pd.DataFrame(errors, columns=["source", "file", "record", "line", "field",
                                                                           "reason"]).to_csv(p, index=False)
    written = {}
    for name, write in files.items():
        with atomic_path(out / name) as tmp:
            write(tmp)
        written[name] = out / name
    return written

