"""A report's data: the counts, tables and trend of one run, built from a quality result (no files)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from almatools.catalog import RULES, Severity

if TYPE_CHECKING:
    from almatools.merge import Worklist
    from almatools.quality.run import QualityResult
from almatools.reports.masking import Masker, _keys
from almatools.reports.runs import _now, _text, load_secret, read_history, read_last_findings

SECTIONS = (
    ("summary", "Summary"),
    ("by-rule", "Findings by rule"),
    ("by-severity", "Findings by severity"),
    ("by-group", "Findings by user group"),
    ("trend", "Trend"),
    ("top-findings", "Top findings"),
    ("duplicates", "Duplicate clusters"),
    ("merge-proposals", "Merge proposals"),
    ("resolved", "Resolved since the last run"),
    ("about", "How to read this report"),
)
"""The report's sections, in order: (HTML id, heading)."""

SEVERITIES = tuple(s.value for s in Severity)
SEVERITY_COLOURS = {"error": "#c62828", "warning": "#e07b00", "info": "#1565c0"}
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_RULE_RANK = {r: i for i, r in enumerate(RULES)}
_XLSX_MAX_ROWS = 1_000_000  # Excel holds 1,048,576 rows a sheet


def merge_proposals(result: QualityResult, sis: pd.DataFrame | None = None, *,
                    requests: str | os.PathLike[str] | pd.DataFrame | None = None) -> Worklist:
    """The merge worklist of a run's duplicate clusters (every pair ``proposed``; nothing is saved).

    Args:
        result: the run's :class:`~almatools.quality.QualityResult`.
        sis: the SIS extract's patron table: which SIS records are current (without it every SIS-managed
            record counts as current, the cautious reading).
        requests: merge requests recorded at registration, if any.
    """
    from almatools.merge import propose

    sis_ids = None if sis is None else sis["primary_id"].astype("string").fillna("").tolist()
    return propose(result.clusters, result.users, sis_ids, requests=requests, pairs=result.pairs)


# -- the report's data -------------------------------------------------------------------------------

@dataclass
class ReportData:
    """Everything the HTML and the workbook show, already masked when ``masked``.

    Attributes:
        title, period: as given (the period, e.g. "November 2026", may be empty).
        generated_at: when the report was built (ISO, with offset).
        masked: personal data is replaced by tokens.
        summary: the headline numbers (see :meth:`summary_text`).
        by_rule: one row per rule: counts now, at the last run, new and resolved.
        by_severity, by_group: (name, count, count at the last run) rows.
        findings: every finding, with ``new`` (True/False; None on a first run).
        top: the top findings (severity, then new first, then rule order).
        clusters: one row per clustered record; cluster_groups: the top clusters with their members.
        proposals: one row per merge pair; held: clusters held for manual review.
        resolved: the findings of the last run that this run no longer has.
        trend: one row per run (earlier runs from the history, then this one).
        previous_run: the name of the run "new" and "resolved" compare with (None on a first run).
        entry: this run's history record (no personal data).
        keys: {finding key: [rule, id token, other token, field]} of this run.
    """

    title: str
    period: str
    generated_at: str
    masked: bool
    summary: dict[str, Any]
    by_rule: list[dict[str, Any]]
    by_severity: list[dict[str, Any]]
    by_group: list[dict[str, Any]]
    findings: pd.DataFrame
    top: pd.DataFrame
    clusters: pd.DataFrame
    cluster_groups: list[dict[str, Any]]
    proposals: pd.DataFrame
    held: list[dict[str, Any]]
    resolved: pd.DataFrame
    trend: list[dict[str, Any]]
    previous_run: str | None
    entry: dict[str, Any]
    keys: dict[str, list[str]] = field(repr=False, default_factory=dict)
    top_n: int = 50

    def summary_text(self) -> str:
        """The headline numbers in a few lines (no personal data)."""
        s = self.summary
        sev = ", ".join(f"{r['severity']} {r['count']:,}" for r in self.by_severity)
        lines = [f"{self.title}{f' ({self.period})' if self.period else ''}: records as of {s['today']}, "
                 f"policy {s['policy']}",
                 f"Users: {s['users']:,}; SIS extract: "
                 + (f"{s['sis_users']:,} records" if s["sis_users"] is not None else "none"),
                 f"Findings: {s['findings']:,} on {s['records_with_findings']:,} records ({sev})"]
        if self.previous_run:
            lines.append(f"Since the last run ({self.previous_run}): {s['new']:,} new, {s['resolved']:,} resolved")
        else:
            lines.append("First run in this folder: new and resolved findings are counted from the next run on.")
        lines.append(f"Duplicates: {s['duplicate_clusters']:,} clusters; merge proposals: {s['merge_proposals']:,} "
                     f"pairs ({s['merge_blocked']:,} fail a hard check for now), {s['merge_held']:,} held")
        if self.masked:
            lines.append("Personal data is masked (names, emails and identifiers are tokens).")
        return "\n".join(lines)


def _source_info(src: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not src:
        return None
    given = _text(src.get("source"))
    shown = given if given.strip().lower() in ("api:", "") else Path(given).name
    return {"source": shown, "kind": _text(src.get("kind")), "records": int(src.get("records") or 0),
            "skipped": int(src.get("skipped") or 0)}


def _counts(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def build_report(result: QualityResult, worklist: Worklist | None = None, *,
                 root: str | os.PathLike[str] | None = None, sis: pd.DataFrame | None = None, mask: bool = False,
                 title: str = "Patron data quality", period: str = "", top_n: int = 50,
                 history: list[dict[str, Any]] | None = None, last: dict[str, Any] | None = None,
                 secret: bytes | None = None) -> ReportData:
    """Build the report of a run.

    Args:
        result: the run's :class:`~almatools.quality.QualityResult`.
        worklist: the merge proposals (:func:`merge_proposals`); None: none.
        root: the output root, for the history, the last run's findings and the secret (unless given).
        sis: the SIS extract's patron table (its records' values are masked too).
        mask: replace names, emails and identifiers by tokens.
        title, period: shown at the top (the period, e.g. "November 2026", may be empty).
        top_n: how many findings, clusters and merge pairs the HTML lists (the workbook has them all).
        history, last, secret: instead of reading them from ``root``.
    """
    secret = secret if secret is not None else load_secret(root)
    history = history if history is not None else read_history(root)
    last = last if last is not None else read_last_findings(root)
    masker = Masker(secret, enabled=mask)
    summary_in = result.summary
    findings = result.findings.reset_index(drop=True).astype("string").fillna("")
    clusters = result.clusters.reset_index(drop=True)
    proposals = worklist.to_frame() if worklist is not None else pd.DataFrame(
        columns=["pair_id", "cluster_id", "status", "source", "from_primary_id", "from_name", "to_primary_id",
                 "to_name", "match_probability", "reason", "hard_failures", "warnings", "evidence", "note",
                 "reviewer", "decided_at", "verified"])
    held = list(worklist.held) if worklist is not None else []

    if mask:
        involved = set(findings["primary_id"]) | set(findings["other_primary_id"])
        involved |= set(clusters["primary_id"].astype("string").fillna("")) if len(clusters) else set()
        involved |= set(proposals["from_primary_id"].astype(str)) | set(proposals["to_primary_id"].astype(str))
        for h in held:
            involved |= set(h.get("primary_ids", []))
        involved.discard("")
        masker.learn(result.users, only=involved)
        masker.learn(sis, only=involved)
        masker.learn_clusters(set(clusters["cluster_id"].astype("string").fillna("")) if len(clusters) else ())

    # new and resolved, against the last run's keys
    order, keys = _keys(findings, secret, masker)
    previous_keys: dict[str, list[str]] | None = last.get("keys") if last else None
    previous_run = (_text(last.get("run")) or None) if last else None
    if previous_keys is None:
        new_flags: list[bool | None] = [None] * len(order)
        resolved_keys: list[str] = []
    else:
        new_flags = [k not in previous_keys for k in order]
        current = set(keys)
        resolved_keys = [k for k in previous_keys if k not in current]
    shown = masker.frame(findings, ids=["primary_id", "other_primary_id"])
    if masker.enabled:  # a message is built from its records' values: they are masked first, whatever their form
        shown["message"] = [masker.about(m, (p, o)) for m, p, o in zip(findings["message"].tolist(),
                                                                      findings["primary_id"].tolist(),
                                                                      findings["other_primary_id"].tolist())]
    shown = shown.assign(new=pd.array(new_flags, dtype="boolean"))
    new_total = sum(1 for f in new_flags if f)
    resolved = _resolved_frame(resolved_keys, previous_keys or {}, result, findings, masker)

    # counts
    prev = history[-1] if history else None
    now_rule = _counts(findings["rule_id"])
    new_rule = _counts(r for r, f in zip(findings["rule_id"], new_flags) if f)
    res_rule = _counts(resolved["rule_id"]) if len(resolved) else {}
    not_checked = set(summary_in.get("rules_not_checked", []))
    by_rule = []
    for rule_id, rule in RULES.items():
        before = (prev or {}).get("by_rule", {}).get(rule_id) if prev else None
        by_rule.append({"rule_id": rule_id, "severity": rule.severity.value, "family": rule.family,
                        "title": rule.title, "action": rule.action, "count": now_rule.get(rule_id, 0),
                        "previous": before, "new": new_rule.get(rule_id, 0) if previous_keys is not None else None,
                        "resolved": res_rule.get(rule_id, 0) if previous_keys is not None else None,
                        "checked": rule_id not in not_checked
                        and not (rule_id == "DUPLICATE" and summary_in.get("duplicates") != "done")})
    now_sev = _counts(findings["severity"])
    by_severity = [{"severity": s, "count": now_sev.get(s, 0),
                    "previous": (prev or {}).get("by_severity", {}).get(s, 0) if prev else None} for s in SEVERITIES]
    groups = findings["user_group"].replace("", "(none)")
    now_group = _counts(groups)
    prev_group = (prev or {}).get("by_group", {}) if prev else {}
    by_group = [{"group": g, "count": n, "previous": prev_group.get(g, 0) if prev else None}
                for g, n in sorted(now_group.items(), key=lambda kv: (-kv[1], kv[0]))]
    by_group += [{"group": g, "count": 0, "previous": n} for g, n in sorted(prev_group.items())
                 if g not in now_group and n]

    # top findings: errors first, new before old, then the catalogue's order
    rank = pd.DataFrame({"sev": findings["severity"].map(_SEVERITY_RANK).fillna(9).to_numpy(),
                         "new": [0 if f else 1 for f in new_flags],
                         "rule": findings["rule_id"].map(_RULE_RANK).fillna(99).to_numpy(),
                         "pos": range(len(findings))})
    top = shown.iloc[rank.sort_values(["sev", "new", "rule", "pos"])["pos"].to_numpy()[:top_n]]

    # duplicate clusters and merge proposals
    shown_clusters = masker.frame(clusters, ids=["primary_id"], id_lists=["other_primary_ids"],
                                  names=["first_name", "last_name"], clusters=["cluster_id"])
    if masker.enabled and "evidence" in clusters.columns:
        others = clusters["other_primary_ids"].astype("string").fillna("").tolist() \
            if "other_primary_ids" in clusters.columns else [""] * len(clusters)
        shown_clusters["evidence"] = [masker.about(e, [p, *o.split(";")]) for e, p, o in zip(
            clusters["evidence"].tolist(), clusters["primary_id"].tolist(), others)]
    cluster_groups = _cluster_groups(shown_clusters, top_n)
    shown_proposals = masker.frame(proposals, ids=["from_primary_id", "to_primary_id"],
                                   names=["from_name", "to_name", "reviewer"], clusters=["cluster_id"])
    if masker.enabled:
        for column in ("reason", "hard_failures", "warnings", "evidence", "note", "verified"):
            if column in proposals.columns:
                shown_proposals[column] = [masker.about(t, (f, o)) for t, f, o in zip(
                    proposals[column].tolist(), proposals["from_primary_id"].tolist(),
                    proposals["to_primary_id"].tolist())]
    shown_held = [{"cluster_id": masker.cluster(h.get("cluster_id")) if h.get("cluster_id") else "",
                   "primary_ids": [masker.id(p) for p in h.get("primary_ids", [])],
                   "reason": masker.about(h.get("reason"), h.get("primary_ids", []))} for h in held]
    blocked = int((proposals["hard_failures"].astype("string").fillna("") != "").sum()) if len(proposals) else 0

    generated = _now()
    today = _text(summary_in.get("today"))
    period = period.strip()
    users_src = _source_info(summary_in.get("sources", {}).get("users"))
    sis_src = _source_info(summary_in.get("sources", {}).get("sis"))
    summary = {
        "today": today, "policy": _text(summary_in.get("policy")), "users": int(summary_in.get("users", 0)),
        "sis_users": summary_in.get("sis_users"), "findings": len(findings),
        "records_with_findings": int(findings["primary_id"].nunique()) if len(findings) else 0,
        "new": new_total, "resolved": len(resolved), "duplicates": _text(summary_in.get("duplicates")),
        "duplicate_pairs": int(summary_in.get("duplicate_pairs", 0)),
        "duplicate_clusters": int(clusters["cluster_id"].nunique()) if len(clusters) else 0,
        "clustered_records": len(clusters), "merge_proposals": len(proposals), "merge_blocked": blocked,
        "merge_held": len(held), "rules_not_checked": sorted(not_checked, key=lambda r: _RULE_RANK.get(r, 99)),
        "sources": {"users": users_src, "sis": sis_src},
        "skipped": sum(s["skipped"] for s in (users_src, sis_src) if s),
        **{f"severity_{s['severity']}": s["count"] for s in by_severity},
    }
    entry = {
        "version": 1, "run": None, "generated_at": generated.isoformat(timespec="seconds"), "today": today,
        "title": title, "period": period, "masked": mask, "policy": summary["policy"], "users": summary["users"],
        "sis_users": summary["sis_users"], "findings": summary["findings"],
        "records_with_findings": summary["records_with_findings"],
        "by_rule": {r: now_rule.get(r, 0) for r in RULES},
        "by_severity": {s["severity"]: s["count"] for s in by_severity}, "by_group": now_group,
        "duplicate_pairs": summary["duplicate_pairs"], "duplicate_clusters": summary["duplicate_clusters"],
        "merge_proposals": summary["merge_proposals"], "merge_blocked": blocked, "merge_held": len(held),
        "new": new_total if previous_keys is not None else None,
        "resolved": len(resolved) if previous_keys is not None else None, "previous_run": previous_run,
        "sources": {k: v for k, v in summary["sources"].items() if v},
    }
    trend = [_trend_row(e) for e in history[-24:]] + [_trend_row(entry, label="this run")]
    return ReportData(title=title, period=period, generated_at=entry["generated_at"], masked=mask, summary=summary,
                      by_rule=by_rule, by_severity=by_severity, by_group=by_group, findings=shown, top=top,
                      clusters=shown_clusters, cluster_groups=cluster_groups, proposals=shown_proposals,
                      held=shown_held, resolved=resolved, trend=trend, previous_run=previous_run, entry=entry,
                      keys=keys, top_n=top_n)


def _trend_row(entry: Mapping[str, Any], label: str | None = None) -> dict[str, Any]:
    sev = entry.get("by_severity", {}) or {}
    return {"run": label or _text(entry.get("run")) or _text(entry.get("generated_at"))[:16],
            "today": _text(entry.get("today")), "users": entry.get("users"), "findings": entry.get("findings", 0),
            **{s: int(sev.get(s, 0)) for s in SEVERITIES},
            "duplicate_clusters": entry.get("duplicate_clusters"), "merge_proposals": entry.get("merge_proposals"),
            "new": entry.get("new"), "resolved": entry.get("resolved")}


def _resolved_frame(resolved_keys: list[str], previous: Mapping[str, list[str]], result: QualityResult,
                    findings: pd.DataFrame, masker: Masker) -> pd.DataFrame:
    """The last run's findings that are gone, with the records named when the report is not masked
    and the record is still known (a purged record keeps its token)."""
    columns = ["rule_id", "severity", "title", "primary_id", "other_primary_id", "field"]
    if not resolved_keys:
        return pd.DataFrame(columns=columns, dtype="object")
    names: dict[str, str] = {}
    if not masker.enabled:
        wanted = {t for k in resolved_keys for t in previous[k][1:3] if t}
        pool = set(result.users["primary_id"].astype("string").fillna("")) | set(findings["primary_id"])
        pool |= set(findings["other_primary_id"])
        for pid in pool:
            if pid and (token := masker.token("id", pid)) in wanted:
                names[token] = pid
    rows = []
    for key in resolved_keys:
        rule_id, pid, other, fld = (list(previous[key]) + ["", "", "", ""])[:4]
        rule = RULES.get(rule_id)
        rows.append({"rule_id": rule_id, "severity": rule.severity.value if rule else "",
                     "title": rule.title if rule else "", "primary_id": names.get(pid, pid),
                     "other_primary_id": names.get(other, other), "field": fld})
    frame = pd.DataFrame(rows, columns=columns)
    frame["_rank"] = frame["rule_id"].map(_RULE_RANK).fillna(99)
    return frame.sort_values(["_rank", "primary_id"]).drop(columns="_rank").reset_index(drop=True)


def _cluster_groups(clusters: pd.DataFrame, top_n: int) -> list[dict[str, Any]]:
    if clusters.empty:
        return []
    groups = []
    for cid, members in clusters.groupby(clusters["cluster_id"].astype(str), sort=False):
        probability = pd.to_numeric(members["match_probability"], errors="coerce")
        groups.append({"cluster_id": cid, "size": len(members),
                       "probability": float(probability.max()) if probability.notna().any() else None,
                       "members": [{k: _text(v) for k, v in m.items()} | {
                           "match_probability": _text(m.get("match_probability")) and
                           f"{float(m['match_probability']):.3f}"} for m in members.to_dict("records")]})
    groups.sort(key=lambda g: (-g["size"], -(g["probability"] or 0), g["cluster_id"]))
    return groups[:top_n]
