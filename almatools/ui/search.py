"""The patron search panel: one box for identifiers, names and emails.

Whatever is typed is searched every way it can match: as an identifier (primary id, barcode or any
other identifier, ignoring case), as a name (``Smith``, ``Smith, Jane`` or ``Jane Smith``) and, when it
holds an ``@``, as an email address. The matches are listed once each, with how they were found.
Enter in the box searches, as does the button.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from almatools.client import AlmaClient
from almatools.errors import AlmaError, ConfigError

__all__ = ["build_user_search", "search_everything", "UserSearchPanel"]

_COLUMNS = [("primary_id", "Primary id"), ("first_name", "First name"), ("last_name", "Last name"),
            ("user_group", "User group"), ("account_type", "Account type"), ("status", "Status"),
            ("found_by", "Found by")]


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("desc") or value.get("value")
    return html.escape("" if value is None else str(value))


def _table(rows: list[dict]) -> str:
    columns = [(key, label) for key, label in _COLUMNS if any(r.get(key) for r in rows)]
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{label}</th>" for _, label in columns)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{_cell(r.get(key))}</td>" for key, _ in columns)
                   + "</tr>" for r in rows)
    return f"<table class='almatools-search-table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _name_clauses(value: str) -> dict[str, str]:
    """``Smith`` → last name; ``Smith, Jane`` → last and first; ``Jane Smith`` → first and last."""
    if "," in value:
        last, first = (part.strip() for part in value.split(",", 1))
        return {"last_name": last, "first_name": first} if first else {"last_name": last}
    words = value.split()
    if len(words) == 1:
        return {"last_name": words[0]}
    return {"first_name": " ".join(words[:-1]), "last_name": words[-1]}


def search_everything(client: AlmaClient, value: str, *, max_results: int = 50) -> list[dict]:
    """Users matching ``value`` as an identifier, a name or an email, each once, best kind of match first.

    Each returned user has a ``found_by`` entry (``identifier``, ``name``, ``email``, joined by ``, ``
    when it matched several ways).

    Raises:
        AlmaError: Alma refused a search or could not be reached.
    """
    value = value.strip()
    found: dict[str, dict] = {}

    def add(user: dict, how: str) -> None:
        key = str(user.get("primary_id") or "").casefold()
        if key in found:
            if how not in found[key]["found_by"]:
                found[key]["found_by"] += f", {how}"
        elif len(found) < max_results:
            found[key] = {**user, "found_by": how}

    # Alma's GET /users/{id} takes any unique identifier; a value with spaces cannot be one.
    if value and not any(ch.isspace() for ch in value) and "," not in value:
        user = client.find_user(value)
        if user:
            add(user, "identifier")
    if "@" in value:
        for user in client.search_users(max_records=max_results, email=value):
            add(user, "email")
    elif any(ch.isalpha() for ch in value):
        clauses = {k: v for k, v in _name_clauses(value).items() if v.strip()}
        for user in client.search_users(max_records=max_results, **clauses) if clauses else ():
            add(user, "name")
    return list(found.values())


class UserSearchPanel(widgets.VBox):
    """The search box, its button and the result. Attributes: ``text`` (Text), ``button`` (Button),
    ``result`` (HTML); ``search()`` runs the search on what the box holds."""

    def __init__(self, client: AlmaClient, *, max_results: int = 50) -> None:
        self.client, self.max_results = client, max_results
        # continuous_update=False: the value reaches the kernel on Enter (or when the box loses the
        # focus), which is what starts the search; Text.on_submit is deprecated in ipywidgets 8.
        self.text = widgets.Text(placeholder="an identifier, a name (Smith, Jane) or an email, then Enter",
                                 description="Find a patron", continuous_update=False,
                                 style={"description_width": "initial"}, layout=widgets.Layout(width="60%"))
        self.text.add_class("almatools-search-box")
        self.button = widgets.Button(description="Search", button_style="primary", icon="search")
        self.button.add_class("almatools-search-button")
        self.result = widgets.HTML()
        self.result.add_class("almatools-search-result")
        self.text.observe(lambda change: self.search() if change["new"].strip() else None, names="value")
        self.button.on_click(lambda _: self.search())
        super().__init__([widgets.HBox([self.text, self.button]), self.result])
        self.add_class("almatools-search")

    def search(self) -> None:
        """Search for what the box holds and show the matches."""
        value = self.text.value.strip()
        if not value:
            self.result.value = ("<span style='color:#990000'>Type an identifier, a name or an email address "
                                 "first.</span>")
            return
        try:
            rows = search_everything(self.client, value, max_results=self.max_results)
        except (AlmaError, ConfigError) as exc:
            self.result.value = f"<span style='color:#990000'>{html.escape(str(exc))}</span>"
            return
        if not rows:
            self.result.value = (f"No patron found for <b>{html.escape(value)}</b> as an identifier, a name"
                                 f"{' or an email' if '@' in value else ''}.")
            return
        more = " (the first ones)" if len(rows) >= self.max_results else ""
        self.result.value = f"<p><b>{len(rows)}</b> found{more}</p>" + _table(rows)


def build_user_search(client: AlmaClient, *, max_results: int = 50) -> UserSearchPanel:
    """One search box over Alma's users: identifiers, names and emails at once (see the module docstring).

    Args:
        client: the Alma client.
        max_results: the most users listed.
    """
    return UserSearchPanel(client, max_results=max_results)
