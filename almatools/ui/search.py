"""A small user-search panel: find patrons by identifier, name or email."""

from __future__ import annotations

import html

import ipywidgets as widgets

from almatools.client import AlmaClient
from almatools.errors import AlmaError, ConfigError

_MODES = [("Any identifier", "id"), ("Name", "name"), ("Email", "email"), ("Anything", "general_info")]


def _cell(value) -> str:
    if isinstance(value, dict):
        value = value.get("desc") or value.get("value")
    return html.escape("" if value is None else str(value))


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{c}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{_cell(r.get(c))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _name_clauses(value: str) -> dict[str, str]:
    """``Smith`` → last name; ``Smith, Jane`` → last and first; ``Jane Smith`` → first and last."""
    if "," in value:
        last, first = (part.strip() for part in value.split(",", 1))
        return {"last_name": last, "first_name": first} if first else {"last_name": last}
    words = value.split()
    if len(words) == 1:
        return {"last_name": words[0]}
    return {"first_name": " ".join(words[:-1]), "last_name": words[-1]}


def build_user_search(client: AlmaClient, *, max_results: int = 50) -> widgets.VBox:
    """A search box over Alma's users.

    The panel's children are, in order: the mode dropdown, the text box, the Search button and the
    result (an ``HTML`` widget). By identifier it looks the user up directly (primary id or any
    identifier, ignoring case); by name it searches last name and first name words; by email the
    email field.
    """
    mode = widgets.Dropdown(options=_MODES, value="id", description="Search by")
    text = widgets.Text(placeholder="e.g. 123456789, Smith Jane, jane@example.edu", description="Value")
    button = widgets.Button(description="Search", button_style="primary", icon="search")
    result = widgets.HTML()

    def search(_=None) -> None:
        value = text.value.strip()
        if not value:
            result.value = "<span style='color:#990000'>Type an identifier, a name or an email first.</span>"
            return
        try:
            if mode.value == "id":
                user = client.find_user(value)
                rows = [user] if user else []
            elif mode.value == "name":
                rows = list(client.search_users(max_records=max_results, **_name_clauses(value)))
            else:
                rows = list(client.search_users(max_records=max_results, **{mode.value: value}))
        except (AlmaError, ConfigError) as exc:
            result.value = f"<span style='color:#990000'>{html.escape(str(exc))}</span>"
            return
        if not rows:
            result.value = f"No user found for {html.escape(value)}."
            return
        columns = ["primary_id", "first_name", "last_name", "user_group", "account_type", "status"]
        columns = [c for c in columns if any(c in r for r in rows)]
        result.value = f"<p>{len(rows)} found</p>" + _table(rows, columns)

    button.on_click(search)
    return widgets.VBox([mode, text, button, result])
