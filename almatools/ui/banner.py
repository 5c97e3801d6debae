"""The environment banner every notebook shows before anything can write: SANDBOX or PRODUCTION."""

from __future__ import annotations

import html

import ipywidgets as widgets

from almatools.client import AlmaClient

_COLOURS = {"SANDBOX": ("#0b5394", "#e8f0fb"), "PRODUCTION": ("#990000", "#fdecea")}


def banner_text(client: AlmaClient) -> str:
    """The banner's line (:meth:`AlmaClient.banner_text`, where commands print it too)."""
    return client.banner_text()


def build_banner(client: AlmaClient) -> widgets.HTML:
    """A coloured banner: blue for the local sandbox, red for production Alma (with its region)."""
    return widgets.HTML(value=banner_html(client), layout=widgets.Layout(width="100%"))


def banner_html(client: AlmaClient) -> str:
    """The banner as HTML, for a plain notebook output (kept in an executed notebook, unlike a widget's)."""
    fg, bg = _COLOURS[client.environment]
    note = ("Local sandbox with synthetic patrons: safe to try anything." if client.environment == "SANDBOX"
            else "Real patron records: changes here reach your institution's Alma.")
    body = (f'<div style="border-left:8px solid {fg};background:{bg};padding:6px 12px;font-family:sans-serif">'
            f'<b style="color:{fg};font-size:1.2em">{html.escape(banner_text(client))}</b>'
            f"<br><span>{html.escape(note)}</span></div>")
    return body
