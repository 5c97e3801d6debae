"""The findings panel: filter a quality run's findings, look at a duplicate cluster side by side, review the
possible duplicate pairs, export."""

from __future__ import annotations

import html
from pathlib import Path
from types import SimpleNamespace

import ipywidgets as widgets
import pandas as pd

from almatools.catalog import RULES
from almatools.config import workspace
from almatools.files import text_cells, write_csv
from almatools.labels import label
from almatools.quality.review import DECISIONS_FILE, PairDecisions
from almatools.quality.run import DUPLICATE_COLUMNS, QualityResult
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


_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_SEVERITY_COLOURS = {"error": "#c62828", "warning": "#8a5a00", "info": "#0b5394"}


def _cell(column: str, value: object) -> str:
    """A table cell's content: a rule reads as its title (the code, for the rule filter and the CSV, below it)."""
    text = html.escape(str(value))
    if column == "rule_id" and str(value) in RULES:
        return (f"{html.escape(RULES[str(value)].title)}<br>"
                f"<span style='color:#666;font-size:0.85em'>{text}</span>")
    if column == "severity" and str(value) in _SEVERITY_COLOURS:
        return f"<b style='color:{_SEVERITY_COLOURS[str(value)]}'>{text}</b>"
    return text


def _by_severity(findings: pd.DataFrame) -> pd.DataFrame:
    """Errors first, then warnings, then info; the catalogue's order within each (a stable sort)."""
    return findings.sort_values("severity", key=lambda s: s.map(_SEVERITY_ORDER).fillna(3), kind="stable")


def _table(frame: pd.DataFrame, columns: list[str]) -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(label(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px;vertical-align:top;line-height:1.35'>"
                                    f"{_cell(c, v)}</td>"
                                    for c, v in zip(columns, row)) + "</tr>"
                   for row in frame[columns].fillna("").itertuples(index=False))
    return (f"<table class='almatools-findings-table' style='border-collapse:collapse'><thead><tr>{head}</tr>"
            f"</thead><tbody>{body}</tbody></table>")


def _side_by_side(users: pd.DataFrame, members: list[str]) -> str:
    """Records side by side; fields whose values differ are highlighted."""
    users = users[users["primary_id"].astype(str).isin(members)].drop_duplicates("primary_id")
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
    return f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def cluster_html(result: QualityResult, cluster_id: str) -> str:
    """The records of a duplicate cluster side by side; fields whose values differ are highlighted."""
    members = result.clusters.loc[result.clusters["cluster_id"] == cluster_id, "primary_id"].astype(str).tolist()
    pairs = result.pairs[result.pairs["cluster_id"] == cluster_id]
    links = "".join(f"<li>{html.escape(str(p.primary_id_l))} ~ {html.escape(str(p.primary_id_r))}: "
                    f"{p.match_probability:.3f}, {html.escape(str(p.evidence))}</li>" for p in pairs.itertuples())
    return f"{_side_by_side(result.users, members)}<ul>{links}</ul>"


def _decisions(result: QualityResult, decisions: PairDecisions | str | Path | None) -> PairDecisions:
    if isinstance(decisions, PairDecisions):
        return decisions
    if decisions is None:
        decisions = result.summary.get("decisions_file") or (workspace() / "quality-output" / DECISIONS_FILE)
    return PairDecisions(Path(decisions).expanduser())


def build_possible_review(result: QualityResult, decisions: PairDecisions | str | Path | None = None
                          ) -> widgets.VBox:
    """The review of *possible* duplicate pairs: one pair at a time, side by side, and a decision.

    *Same person* and *Different people* are written at once to the decisions journal (the one the run
    read, else ``pair_decisions.jsonl`` in ``quality-output`` in the workspace). The next run of the
    linkage reads it: a pair marked different is never proposed again, one marked same is linked (and
    goes to the merge proposals). *Skip* moves on without deciding.

    Widgets for tests and scripts: ``box.controls`` (``pick``, ``view``, ``same``, ``different``, ``skip``,
    ``status``, ``count``).
    """
    review = _decisions(result, decisions)
    pairs = result.possible.reset_index(drop=True)
    title = widgets.HTML(f"<h3>Possible duplicates to review ({len(pairs):,})</h3>")
    count = widgets.HTML()
    pick = widgets.Dropdown(options=[("(no pair to review)" if pairs.empty else "(pick a pair)", -1)] + [
        (f"{r.primary_id_l} ~ {r.primary_id_r}: {r.first_name_l} {r.last_name_l} / {r.first_name_r} {r.last_name_r}"
         f" ({r.match_probability:.2f})", i) for i, r in enumerate(pairs.itertuples())],
        value=-1, description="Pair", layout=widgets.Layout(width="80%"))
    view, status = widgets.HTML(), widgets.HTML()
    same = widgets.Button(description="Same person", icon="link", button_style="success",
                          layout=widgets.Layout(width="auto"))
    different = widgets.Button(description="Different people", icon="unlink", button_style="warning",
                               layout=widgets.Layout(width="auto"))
    skip = widgets.Button(description="Skip", icon="forward", layout=widgets.Layout(width="auto"))

    def undecided() -> int:
        return sum(1 for a, b in zip(pairs["primary_id_l"], pairs["primary_id_r"]) if review.lookup(a, b) is None)

    def show(_=None) -> None:
        i = pick.value
        for b in (same, different, skip):
            b.disabled = i < 0
        count.value = (f"{undecided():,} of {len(pairs):,} pairs not decided yet; decisions are kept in "
                       f"<code>{html.escape(str(review.path))}</code>")
        if i < 0:
            view.value = ""
            return
        r = pairs.iloc[i]
        said = review.lookup(r["primary_id_l"], r["primary_id_r"])
        decided = f"<p><b>Decided:</b> {'same person' if said == 'same' else 'different people'}</p>" if said else ""
        view.value = (f"{_side_by_side(result.users, [str(r['primary_id_l']), str(r['primary_id_r'])])}"
                      f"<p><b>Why it is only possible:</b> {html.escape(str(r['reason']))}<br>"
                      f"<b>Evidence:</b> {html.escape(str(r['evidence']))}</p>{decided}")

    def next_pair() -> None:
        later = [i for i in range(pick.value + 1, len(pairs))
                 if review.lookup(pairs.at[i, "primary_id_l"], pairs.at[i, "primary_id_r"]) is None]
        if later:
            pick.value = later[0]
        else:
            show()

    def decide(verdict: str) -> None:
        r = pairs.iloc[pick.value]
        try:
            review.decide(str(r["primary_id_l"]), str(r["primary_id_r"]), verdict)
        except (OSError, ValueError) as exc:
            status.value = f"<span style='color:#990000'>Not saved: {html.escape(str(exc))}</span>"
            return
        words = "the same person" if verdict == "same" else "different people"
        status.value = (f"Saved: {html.escape(str(r['primary_id_l']))} and {html.escape(str(r['primary_id_r']))} "
                        f"are {words}. The next run uses it.")
        next_pair()

    pick.observe(show, names="value")
    same.on_click(lambda _: decide("same"))
    different.on_click(lambda _: decide("different"))
    skip.on_click(lambda _: next_pair())
    show()
    box = widgets.VBox([title, count, pick, view, widgets.HBox([same, different, skip]), status])
    box.add_class("almatools-possible-review")
    box.controls = SimpleNamespace(pick=pick, view=view, same=same, different=different, skip=skip, status=status,
                                   count=count)
    return box


def build_findings_panel(result: QualityResult, *, export_dir: str | Path | None = None,
                         page_size: int = PAGE_SIZE, decisions: PairDecisions | str | Path | None = None
                         ) -> widgets.VBox:
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
        shown = _by_severity(filter_findings(findings, rules=tuple(rule.value), groups=tuple(group.value),
                                             severity=severity.value))
        state.update(shown=shown, page=0)
        levels = shown["severity"].value_counts()
        split = ", ".join(f"{levels[s]:,} {s}{'s' if s != 'info' else ''}" for s in _SEVERITY_ORDER if s in levels)
        count.value = (f"<b>{len(shown):,}</b> findings on <b>{shown['primary_id'].nunique():,}</b> records"
                       + (f" ({split}). Errors come first: fix them before the next SIS load or purge run; "
                          "warnings are to check." if len(shown) else "."))
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
    cluster = widgets.Dropdown(options=[("(no duplicate clusters found)" if names.empty else "(pick a duplicate cluster)",
                                         "")] + [
        (f"{cid}: {row.first} {row.last} ({row.n} records)", cid) for cid, row in names.iterrows()],
        value="", description="Cluster", layout=widgets.Layout(width="60%"))
    cluster_view = widgets.HTML()
    cluster.observe(lambda _: setattr(cluster_view, "value", cluster_html(result, cluster.value) if cluster.value
                                      else ""), names="value")
    possible = build_possible_review(result, decisions)

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
                    shown.rename(columns=label).to_excel(xl, sheet_name="findings", index=False)
                    clusters[list(DUPLICATE_COLUMNS)].rename(columns=label).to_excel(xl, sheet_name="duplicates",
                                                                                    index=False)
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
