"""The findings panel: filter a quality run's findings, look at a duplicate cluster side by side, export."""

from __future__ import annotations

import html
from pathlib import Path
from types import SimpleNamespace

import ipywidgets as widgets
import pandas as pd

from almatools.files import text_cells, write_csv
from almatools.quality.catalog import RULES
from almatools.quality.run import DUPLICATE_COLUMNS, QualityResult
from almatools.ui.labels import label
from almatools.ui.links import link_html

__all__ = ["build_findings_panel", "build_possible_review", "filter_findings", "cluster_html", "PAGE_SIZE"]

_SHOWN = ["rule_id", "severity", "primary_id", "other_primary_id", "user_group", "message", "action"]
PAGE_SIZE = 25
"""Findings per page of the panel's table."""
_RECORD_FIELDS = ["primary_id", "first_name", "middle_name", "last_name", "birth_date", "user_group", "account_type",
                  "external_id", "status", "expiry_date", "purge_date", "email", "emails", "phone", "identifiers",
                  "line1", "city", "postal_code", "patron_type", "roles"]
_ALL = "(all)"


def filter_findings(findings: pd.DataFrame, *, rules: tuple[str, ...] = (), groups: tuple[str, ...] = (),
                    severity: str = _ALL) -> pd.DataFrame:
    """The findings of the given rules, user groups and severity (an empty choice keeps all)."""
    keep = pd.Series(True, index=findings.index)
    if rules:
        keep &= findings["rule_id"].isin(rules)
    if groups:
        keep &= findings["user_group"].isin(groups)
    if severity and severity != _ALL:
        keep &= findings["severity"] == severity
    return findings[keep]


def _table(frame: pd.DataFrame, columns: list[str]) -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(label(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px;vertical-align:top;line-height:1.35'>"
                                    f"{html.escape(str(v))}</td>"
                                    for v in row) + "</tr>"
                   for row in frame[columns].fillna("").itertuples(index=False))
    return (f"<table class='almatools-findings-table' style='border-collapse:collapse'><thead><tr>{head}</tr>"
            f"</thead><tbody>{body}</tbody></table>")


def cluster_html(result: QualityResult, cluster_id: str) -> str:
    """The records of a duplicate cluster side by side; fields whose values differ are highlighted."""
    members = result.clusters.loc[result.clusters["cluster_id"] == cluster_id, "primary_id"].astype(str).tolist()
    users = result.users[result.users["primary_id"].astype(str).isin(members)].drop_duplicates("primary_id")
    users = users.set_index(users["primary_id"].astype(str)).reindex(members)
    fields = [f for f in _RECORD_FIELDS if f in users.columns]
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(m)}</th>" for m in members)
    rows = []
    for f in fields:
        values = ["" if pd.isna(v) else str(v) for v in users[f]]
        differs = len({v.casefold() for v in values}) > 1
        style = "background:#fff3b0" if differs else ""
        cells = "".join(f"<td style='padding:2px 8px;{style}'>{html.escape(v)}</td>" for v in values)
        rows.append(f"<tr><th style='text-align:left;padding:2px 8px'>{html.escape(label(f))}</th>{cells}</tr>")
    pairs = result.pairs[result.pairs["cluster_id"] == cluster_id]
    links = "".join(f"<li>{html.escape(str(p.primary_id_l))} ~ {html.escape(str(p.primary_id_r))}: "
                    f"{p.match_probability:.3f}, {html.escape(str(p.evidence))}</li>" for p in pairs.itertuples())
    return (f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<ul>{links}</ul>")


def build_possible_review(result: QualityResult) -> widgets.VBox:
    """The review of *possible* duplicate pairs (the linkage's uncertain band): to come.

    For now an empty box, kept in its place in the findings panel (after the duplicate clusters) so that
    the review can be added without moving anything else.
    """
    box = widgets.VBox([])
    box.add_class("almatools-possible-review")
    return box


def build_findings_panel(result: QualityResult, *, export_dir: str | Path | None = None,
                         page_size: int = PAGE_SIZE) -> widgets.VBox:
    """A panel over a quality run, in the order a librarian works.

    First the filters (rule and user group: pick several, none means all; severity) and the duplicate
    cluster picker, which shows the cluster's records side by side with differing fields highlighted;
    then the matching findings as a paged table (``page_size`` rows a page, Previous and Next) with what
    to do about each; then an Export button that writes the filtered findings and the duplicates to a
    folder as CSV or Excel (default: ``quality-output`` in the workspace, see
    :func:`almatools.config.workspace`).

    The widgets are also reachable as ``panel.controls`` (``rule``, ``group``, ``severity``, ``count``,
    ``table``, ``previous``, ``next``, ``page``, ``cluster``, ``cluster_view``, ``possible``, ``folder``,
    ``format``, ``export``, ``status``), for tests and scripts: set ``.value``, call ``.click()``.
    """
    from almatools.config import workspace

    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, not {page_size}")
    findings = result.findings
    by_rule = findings["rule_id"].value_counts()
    rule = widgets.SelectMultiple(options=[(f"{r} ({by_rule[r]:,}): {RULES[r].title}", r) for r in RULES
                                           if r in by_rule.index], description="Rule", rows=6,
                                  layout=widgets.Layout(width="95%"))
    groups = sorted(g for g in findings["user_group"].dropna().unique() if g)
    group = widgets.SelectMultiple(options=groups, description="User group", rows=min(6, max(len(groups), 1)))
    severity = widgets.Dropdown(options=[_ALL, "error", "warning", "info"], value=_ALL, description="Severity")
    count, table, page = widgets.HTML(), widgets.HTML(), widgets.HTML()
    table.add_class("almatools-findings")
    previous = widgets.Button(description="Previous", icon="arrow-left", layout=widgets.Layout(width="auto"))
    following = widgets.Button(description="Next", icon="arrow-right", layout=widgets.Layout(width="auto"))
    previous.add_class("almatools-page-previous")
    following.add_class("almatools-page-next")
    state = {"page": 0, "shown": findings}

    def draw() -> None:
        shown = state["shown"]
        pages = max(1, -(-len(shown) // page_size))
        state["page"] = min(max(state["page"], 0), pages - 1)
        first = state["page"] * page_size
        table.value = _table(shown.iloc[first:first + page_size], _SHOWN)
        last = min(first + page_size, len(shown))
        page.value = (f"<span style='padding:0 1em'>page {state['page'] + 1} of {pages} "
                      f"(findings {first + 1 if len(shown) else 0:,}–{last:,})</span>")
        previous.disabled, following.disabled = state["page"] == 0, state["page"] >= pages - 1

    def refresh(_=None) -> None:
        shown = filter_findings(findings, rules=tuple(rule.value), groups=tuple(group.value), severity=severity.value)
        state.update(shown=shown, page=0)
        count.value = f"<b>{len(shown):,}</b> findings on <b>{shown['primary_id'].nunique():,}</b> records"
        draw()

    def turn(step: int) -> None:
        state["page"] += step
        draw()

    previous.on_click(lambda _: turn(-1))
    following.on_click(lambda _: turn(+1))
    for w in (rule, group, severity):
        w.observe(refresh, names="value")
    refresh()

    clusters = result.clusters
    names = clusters.groupby("cluster_id", sort=True).agg(
        n=("primary_id", "size"), first=("first_name", "first"), last=("last_name", "first"))
    cluster = widgets.Dropdown(options=[("(pick a duplicate cluster)", "")] + [
        (f"{cid}: {row.first} {row.last} ({row.n} records)", cid) for cid, row in names.iterrows()],
        value="", description="Cluster", layout=widgets.Layout(width="60%"))
    cluster_view = widgets.HTML()
    cluster.observe(lambda _: setattr(cluster_view, "value", cluster_html(result, cluster.value) if cluster.value
                                      else ""), names="value")
    possible = build_possible_review(result)

    folder = widgets.Text(value=str(export_dir if export_dir is not None else workspace() / "quality-output"),
                          description="Folder", layout=widgets.Layout(width="50%"))
    fmt = widgets.Dropdown(options=[("CSV", "csv"), ("Excel", "xlsx")], value="csv", description="Format")
    export = widgets.Button(description="Export the findings", icon="download", button_style="primary",
                            layout=widgets.Layout(width="auto"))
    status = widgets.HTML()

    def do_export(_=None) -> None:
        shown = filter_findings(findings, rules=tuple(rule.value), groups=tuple(group.value), severity=severity.value)
        out = Path(folder.value).expanduser()
        try:
            out.mkdir(parents=True, exist_ok=True)
            if fmt.value == "xlsx":
                path = out / "findings.xlsx"
                with pd.ExcelWriter(path, engine="openpyxl") as xl:
                    shown.to_excel(xl, sheet_name="findings", index=False)
                    clusters[list(DUPLICATE_COLUMNS)].to_excel(xl, sheet_name="duplicates", index=False)
                    for sheet in xl.book.worksheets:  # data is shown, never run as a formula
                        text_cells(sheet)
                written = [path]
            else:
                written = [write_csv(shown, out / "findings.csv"),
                           write_csv(clusters[list(DUPLICATE_COLUMNS)], out / "duplicates.csv")]
        except OSError as exc:
            status.value = f"<span style='color:#990000'>Export failed: {html.escape(str(exc))}</span>"
            return
        status.value = f"{len(shown):,} findings written to " + ", ".join(link_html(p) for p in written)

    export.on_click(do_export)
    panel = widgets.VBox([
        widgets.HTML("<h3>Filter the findings</h3>"), rule, widgets.HBox([group, severity]),
        widgets.HTML("<h3>Duplicate clusters</h3>"), cluster, cluster_view, possible,
        widgets.HTML("<h3>Findings</h3>"), count, widgets.HBox([previous, page, following]), table,
        widgets.HTML("<h3>Export</h3>"), widgets.HBox([folder, fmt, export]), status,
    ])
    panel.add_class("almatools-findings-panel")
    panel.controls = SimpleNamespace(rule=rule, group=group, severity=severity, count=count, table=table,
                                     previous=previous, next=following, page=page, cluster=cluster,
                                     cluster_view=cluster_view, possible=possible, folder=folder, format=fmt,
                                     export=export, status=status)
    return panel
