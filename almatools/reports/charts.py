"""The report's charts: inline SVG, no script and no external link."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

from almatools.reports.runs import _text


def _esc(value: Any) -> str:
    return html.escape(_text(value), quote=True)


def bar_chart(items: list[tuple[str, int]], *, label: str, colours: Mapping[str, str] | None = None,
              width: int = 620) -> str:
    """A horizontal bar chart as inline SVG (one bar per item, the value written beside it)."""
    if not items or not any(v for _, v in items):
        return '<p class="muted">Nothing to chart.</p>'
    left, right, bar, gap = 190, 70, 18, 6
    height = len(items) * (bar + gap) + gap
    top = max(v for _, v in items)
    parts = [f'<svg class="chart" role="img" aria-label="{_esc(label)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{_esc(label)}</title>']
    for i, (name, value) in enumerate(items):
        y = gap + i * (bar + gap)
        w = 0 if not value else max(1, round((width - left - right) * value / top))
        colour = (colours or {}).get(name, "#4a6fa5")
        parts.append(f'<text x="{left - 6}" y="{y + bar - 5}" text-anchor="end">{_esc(name)}</text>'
                     f'<rect x="{left}" y="{y}" width="{w}" height="{bar}" fill="{colour}"/>'
                     f'<text x="{left + w + 5}" y="{y + bar - 5}">{value:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _nice(top: float) -> float:
    if top <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(top))
    for step_ in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if top <= step_ * magnitude:
            return step_ * magnitude
    return 10 * magnitude  # pragma: no cover


def line_chart(labels: list[str], series: Mapping[str, list[int | None]], *, label: str,
               colours: Mapping[str, str] | None = None, width: int = 680, height: int = 260) -> str:
    """Lines over runs as inline SVG: one line per series, the runs along the bottom."""
    values = [v for vs in series.values() for v in vs if v is not None]
    if not labels or not values:
        return '<p class="muted">Nothing to chart.</p>'
    left, right, top_pad, bottom = 56, 130, 14, 46
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    ceiling = _nice(max(values))
    n = len(labels)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top_pad + plot_h * (1 - v / ceiling)
    parts = [f'<svg class="chart" role="img" aria-label="{_esc(label)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{_esc(label)}</title>']
    for frac in (0, 0.5, 1):
        yy = y(ceiling * frac)
        parts.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{ceiling * frac:,.0f}</text>')
    every = max(1, math.ceil(n / 8))
    for i, name in enumerate(labels):
        if i % every == 0 or i == n - 1:
            parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 18}" text-anchor="middle" '
                         f'class="small">{_esc(name[:10])}</text>'
                         f'<text x="{x(i):.1f}" y="{height - bottom + 32}" text-anchor="middle" '
                         f'class="small">{_esc(name[10:])}</text>')
    for k, (name, vs) in enumerate(series.items()):
        colour = (colours or {}).get(name, "#4a6fa5")
        points = [(x(i), y(v)) for i, v in enumerate(vs) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{colour}"/>' for px, py in points]
        ly = top_pad + 14 + 18 * k
        parts.append(f'<rect x="{left + plot_w + 14}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{left + plot_w + 31}" y="{ly + 1}">{_esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
