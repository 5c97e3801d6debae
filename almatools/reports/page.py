"""The report's HTML page (``report.html``): one self-contained file rendered from :class:`ReportData`."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from almatools.catalog import RULES
from almatools.reports.charts import bar_chart, line_chart
from almatools.reports.data import SECTIONS, SEVERITIES, SEVERITY_COLOURS, ReportData


def render_html(data: ReportData) -> str:
    """The report as one self-contained HTML page (no script, no external resource)."""
    from jinja2 import Environment, PackageLoader

    env = Environment(loader=PackageLoader("almatools", "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["n"] = lambda v: "–" if v is None or v == "" else f"{int(v):,}"
    env.filters["delta"] = _delta
    rule_colours = {r["rule_id"]: SEVERITY_COLOURS[r["severity"]] for r in data.by_rule}
    charts = {
        "by_rule": bar_chart([(r["rule_id"], r["count"]) for r in data.by_rule if r["count"]],
                             label="Findings by rule", colours=rule_colours),
        "by_severity": bar_chart([(s["severity"], s["count"]) for s in data.by_severity],
                                 label="Findings by severity", colours=SEVERITY_COLOURS),
        "by_group": bar_chart([(g["group"], g["count"]) for g in data.by_group if g["count"]],
                              label="Findings by user group"),
        "trend": line_chart([t["run"] for t in data.trend],
                            {"all findings": [t["findings"] for t in data.trend],
                             **{s: [t[s] for t in data.trend] for s in SEVERITIES}},
                            label="Findings per run", colours={"all findings": "#444", **SEVERITY_COLOURS}),
    }  # SVG built here with every text escaped: the template inserts it as it is
    top = data.top.to_dict("records")
    for row in top:
        row["title"] = RULES[row["rule_id"]].title if row["rule_id"] in RULES else ""
        row["new"] = None if row["new"] is pd.NA else bool(row["new"])
    proposals = data.proposals.head(data.top_n).to_dict("records")
    for row in proposals:
        row["match_probability"] = _prob(row.get("match_probability"))
    statuses = data.proposals["status"].value_counts().to_dict() if len(data.proposals) else {}
    resolved_by_rule = [(r["rule_id"], r["resolved"]) for r in data.by_rule if r["resolved"]]
    return env.get_template("report.html").render(
        d=data, s=data.summary, sections=SECTIONS, charts=charts, top=top, proposals=proposals,
        statuses=statuses, resolved=data.resolved.head(data.top_n).to_dict("records"),
        resolved_by_rule=resolved_by_rule, severities=SEVERITIES, colours=SEVERITY_COLOURS,
        generated=data.generated_at.replace("T", " "))


def _prob(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(number) else f"{number:.3f}"


def _delta(now: Any, before: Any) -> str:
    if before is None or before == "":
        return ""
    change = int(now or 0) - int(before)
    return "±0" if change == 0 else f"{change:+,}"
