"""The merge review panel: one FROM → TO pair at a time, side by side, with its checks and evidence.

Keyboard use: every button is a real HTML button, so Tab moves between them and Enter or Space presses
one. Faster, the **command box** takes one-letter commands followed by Enter (it keeps the focus, so
a reviewer can work through the list without the mouse):

====================  ==========================================
``a``                 approve (refused while a hard check fails)
``r``                 reject
``s``                 swap FROM and TO (the checks run again)
``n some text``       add the note "some text"
``j`` / ``k``         next / previous pair
``g P0012``           go to a pair
====================  ==========================================

Keystrokes typed into a widget's text box stay there: JupyterLab's notebook shortcuts do not fire.
Every decision goes to the worklist's journal on disk at once (see :class:`almatools.merge.Worklist`).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from almatools.client import AlmaClient
from almatools.errors import AlmaToolsError
from almatools.labels import FIELD_LABELS
from almatools.merge import DISPLAY_FIELDS, Pair, Worklist, export_all, verify
from almatools.ui.links import link_html

__all__ = ["MergeReviewPanel", "build_merge_review", "build_merge_verify", "build_merge_exports"]

_LABELS = FIELD_LABELS
_ROW = "padding:2px 8px;border-bottom:1px solid #ddd;vertical-align:top"
_DIFF = "background:#fff2a8"


def _show(value: Any, name: str) -> str:
    if name in ("loans", "requests"):
        return f"{value:g}"
    if name == "fees":
        return f"{value:.2f}"
    return str(value or "").replace(";", "; ")


def _extract(rec: dict[str, Any]) -> str:
    if rec.get("account_type") != "EXTERNAL":
        return "locally managed"
    return {True: "in the current SIS extract", False: "not in the current SIS extract (past)",
            None: "SIS-managed (extract not known)"}[rec.get("in_extract")]


def compare_table(frm: dict[str, Any], to: dict[str, Any]) -> str:
    """Side-by-side HTML of two records; rows whose values differ are highlighted."""
    rows = []
    for name in DISPLAY_FIELDS:
        a, b = _show(frm.get(name), name), _show(to.get(name), name)
        if not a and not b:
            continue
        style = f"{_ROW};{_DIFF}" if a.casefold() != b.casefold() else _ROW
        rows.append(f"<tr style='{style}'><th style='{_ROW};text-align:left'>{_LABELS[name]}</th>"
                    f"<td style='{style}'>{html.escape(a)}</td><td style='{style}'>{html.escape(b)}</td></tr>")
    for label, a, b in (("SIS", _extract(frm), _extract(to)),
                        ("Read from", _origin(frm), _origin(to))):
        style = f"{_ROW};{_DIFF}" if a != b and label == "SIS" else _ROW
        rows.append(f"<tr><th style='{_ROW};text-align:left'>{label}</th><td style='{style}'>{html.escape(a)}</td>"
                    f"<td style='{style}'>{html.escape(b)}</td></tr>")
    head = (f"<tr><th style='{_ROW}'></th><th style='{_ROW};text-align:left;color:#990000'>FROM: merged away, "
            f"deleted</th><th style='{_ROW};text-align:left;color:#0b5394'>TO: kept</th></tr>")
    return f"<table style='border-collapse:collapse;min-width:60%'>{head}{''.join(rows)}</table>"


def _origin(rec: dict[str, Any]) -> str:
    if rec.get("source") == "api":
        return f"Alma, {str(rec.get('checked_at', ''))[:16].replace('T', ' ')}"
    return {"users": "users data", "clusters": "duplicate findings only", "none": "nowhere (not in the data)"}.get(
        str(rec.get("source")), str(rec.get("source")))


def checks_html(pair: Pair) -> str:
    """The pair's reason, evidence and checks as HTML (failed hard checks first)."""
    items = []
    for check in sorted(pair.checks, key=lambda c: (c.ok or not c.checked, not c.hard)):
        if not check.checked:
            mark, colour = "&#10067; not checked yet:", "#8a4b00"
        elif check.ok:
            mark, colour = "&#10004;", "#2e7d32"
        elif check.hard:
            mark, colour = "&#10006; cannot approve:", "#b00020"
        else:
            mark, colour = "&#9888; note:", "#8a4b00"
        items.append(f"<li style='color:{colour}'>{mark} {html.escape(check.message)}</li>")
    probability = "" if pair.match_probability is None else f"match probability {pair.match_probability:.2f}; "
    evidence = html.escape(pair.evidence) or "no evidence recorded"
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in pair.notes)
    return (f"<p><b>Why this direction:</b> {html.escape(pair.reason)}</p>"
            f"<p><b>Evidence:</b> {probability}{evidence}</p><ul style='margin:0'>{''.join(items)}</ul>"
            + (f"<p><b>Notes</b></p><ul style='margin:0'>{notes}</ul>" if notes else ""))


class MergeReviewPanel(widgets.VBox):
    """The review panel (build it with :func:`build_merge_review`).

    Attributes (for tests and scripting): ``header``, ``compare``, ``details``, ``message`` (HTML);
    ``previous_button``, ``approve_button``, ``reject_button``, ``swap_button``, ``next_button``,
    ``note_button`` (Buttons); ``note_text`` (Textarea); ``command`` (Text); ``worklist``; ``current``
    (the shown pair id).
    """

    def __init__(self, worklist: Worklist, *, reviewer: str) -> None:
        if not str(reviewer or "").strip():
            raise AlmaToolsError("Set the reviewer's name: every decision is signed with it.")
        self.worklist, self.reviewer = worklist, reviewer.strip()
        self._clearing = False
        ids = worklist.pair_ids
        self.current: str | None = worklist.next_pending() or (ids[0] if ids else None)
        self.header, self.compare, self.details, self.message = (widgets.HTML() for _ in range(4))

        def button(text: str, style: str, icon: str, tip: str) -> widgets.Button:
            return widgets.Button(description=text, button_style=style, icon=icon, tooltip=tip,
                                  layout=widgets.Layout(width="auto"))

        self.previous_button = button("Previous", "", "arrow-left", "previous pair (command k)")
        self.approve_button = button("Approve", "success", "check", "approve this merge (command a)")
        self.reject_button = button("Reject", "danger", "times", "do not merge (command r)")
        self.swap_button = button("Swap direction", "warning", "exchange", "swap FROM and TO (command s)")
        self.next_button = button("Next", "", "arrow-right", "next pair (command j)")
        self.note_text = widgets.Textarea(placeholder="A note on this pair (kept with your name)",
                                          layout=widgets.Layout(width="60%", height="3.5em"))
        self.note_button = button("Add note", "info", "pencil", "save the note (command n TEXT)")
        self.command = widgets.Text(
            placeholder="a approve · r reject · s swap · n TEXT note · j next · k previous · g P0001 go to; "
                        "then Enter",
            description="Command", continuous_update=False, layout=widgets.Layout(width="80%"))
        self.previous_button.on_click(lambda _: self._move(-1))
        self.next_button.on_click(lambda _: self._move(+1))
        self.approve_button.on_click(lambda _: self._decide("approve"))
        self.reject_button.on_click(lambda _: self._decide("reject"))
        self.swap_button.on_click(lambda _: self._decide("swap"))
        self.note_button.on_click(lambda _: self._note(self.note_text.value))
        self.command.observe(self._on_command, names="value")
        buttons = widgets.HBox([self.previous_button, self.approve_button, self.reject_button, self.swap_button,
                                self.next_button])
        super().__init__([self.header, self.compare, self.details, buttons,
                          widgets.HBox([self.note_text, self.note_button]), self.command, self.message])
        self.refresh()

    # -- actions -----------------------------------------------------------------------------------

    def _say(self, text: str, *, error: bool = False) -> None:
        colour = "#b00020" if error else "#2e7d32"
        self.message.value = f"<span style='color:{colour}'>{html.escape(text)}</span>" if text else ""

    def show(self, pair_id: str) -> None:
        """Show a pair by id."""
        if pair_id not in self.worklist.pair_ids:
            self._say(f"No pair {pair_id}.", error=True)
            return
        self.current = pair_id
        self._say("")
        self.refresh()

    def _move(self, step: int) -> None:
        ids = self.worklist.pair_ids
        if not ids or self.current is None:
            return
        self.current = ids[(ids.index(self.current) + step) % len(ids)]
        self._say("")
        self.refresh()

    def _decide(self, action: str) -> None:
        if self.current is None:
            return
        pid = self.current
        try:
            pair = getattr(self.worklist, action)(pid, reviewer=self.reviewer)
        except AlmaToolsError as exc:
            self._say(str(exc), error=True)
            self.refresh(keep_message=True)
            return
        except OSError as exc:  # the journal could not be written: say so, nothing was decided
            self._say(f"Could not save the decision ({exc}); nothing was changed.", error=True)
            return
        if action == "swap":
            self._say(f"{pid}: swapped; now {pair.from_id} → {pair.to_id}. Checks run again; approve or reject.")
        else:
            self._say(f"{pid}: {pair.decision} ({pair.from_id} → {pair.to_id}), saved.")
            following = self.worklist.next_pending(pid)
            if following is not None:
                self.current = following
            else:
                self._say(f"{pid}: {pair.decision}, saved. Every pair is decided: write the exports below.")
        self.refresh(keep_message=True)

    def _note(self, text: str) -> None:
        if self.current is None:
            return
        try:
            self.worklist.note(self.current, text, reviewer=self.reviewer)
        except AlmaToolsError as exc:
            self._say(str(exc), error=True)
            return
        self.note_text.value = ""
        self._say(f"{self.current}: note saved.")
        self.refresh(keep_message=True)

    def _on_command(self, change: dict[str, Any]) -> None:
        if self._clearing:
            return
        text = str(change["new"] or "").strip()
        self._clearing = True
        try:
            self.command.value = ""  # ready for the next command; the box keeps the focus
        finally:
            self._clearing = False
        if text:
            self.run_command(text)

    def run_command(self, text: str) -> None:
        """Run one command-box command (see the module docstring)."""
        word, _, rest = text.strip().partition(" ")
        word = word.lower()
        if word == "j":
            self._move(+1)
        elif word == "k":
            self._move(-1)
        elif word == "a":
            self._decide("approve")
        elif word == "r":
            self._decide("reject")
        elif word == "s":
            self._decide("swap")
        elif word == "n":
            self._note(rest)
        elif word == "g":
            self.show(rest.strip().upper())
        else:
            self._say(f"Unknown command {text!r}: a, r, s, n TEXT, j, k or g PAIR.", error=True)

    # -- display -----------------------------------------------------------------------------------

    def refresh(self, *, keep_message: bool = False) -> None:
        """Redraw the current pair."""
        counts = self.worklist.decisions()
        summary = f"{counts['proposed']} to review, {counts['approved']} approved, {counts['rejected']} rejected"
        controls = (self.approve_button, self.reject_button, self.swap_button, self.previous_button,
                    self.next_button, self.note_button)
        if self.current is None:
            held = f" ({len(self.worklist.held)} clusters held for manual review)" if self.worklist.held else ""
            self.header.value = f"<h3>Nothing to review</h3><p>The worklist has no pairs{held}.</p>"
            self.compare.value = self.details.value = ""
            for control in controls:
                control.disabled = True
            return
        pair = self.worklist.pair(self.current)
        position = self.worklist.pair_ids.index(pair.pair_id) + 1
        colour = {"approved": "#2e7d32", "done": "#2e7d32", "rejected": "#666", "blocked": "#b00020",
                  "not done": "#b00020"}.get(pair.status, "#0b5394")
        cluster = f" · cluster {html.escape(pair.cluster_id)}" if pair.cluster_id else ""
        decided = f" by {html.escape(pair.reviewer)}" if pair.reviewer and pair.decision != "proposed" else ""
        self.header.value = (f"<h3 style='margin:0.2em 0'>Pair {position} of {len(self.worklist)}: "
                             f"{html.escape(pair.pair_id)}"
                             f"{cluster} · {html.escape(pair.source)} · <span style='color:{colour}'>"
                             f"{html.escape(pair.status)}{decided}</span></h3><p style='margin:0'>{summary}</p>")
        self.compare.value = compare_table(self.worklist.record(pair.from_id), self.worklist.record(pair.to_id))
        self.details.value = checks_html(pair)
        for control in controls:
            control.disabled = False
        self.approve_button.disabled = not pair.approvable or pair.decision == "approved"
        if not keep_message:
            self._say("")


def build_merge_review(worklist: Worklist, *, reviewer: str) -> MergeReviewPanel:
    """The review panel over a worklist, opened at the first undecided pair.

    Args:
        worklist: a saved worklist (decisions go to its journal at once).
        reviewer: the name that signs every decision.
    """
    return MergeReviewPanel(worklist, reviewer=reviewer)


def _frame_html(frame) -> str:
    return frame.to_html(index=False, escape=True, border=0) if len(frame) else "<p>No approved pairs to verify.</p>"


def build_merge_verify(worklist: Worklist, client: AlmaClient) -> widgets.VBox:
    """After the merges are done in Alma: a button that checks every approved pair (FROM gone, TO there)
    and marks it done or not done. Attributes: ``button``, ``result`` (HTML)."""
    button = widgets.Button(description="Verify in Alma", button_style="primary", icon="search",
                            tooltip="look every approved FROM and TO up in Alma", layout=widgets.Layout(width="auto"))
    result = widgets.HTML("<p>Press the button once the merges are done in Alma.</p>")

    def run(_=None) -> None:
        try:
            frame = verify(worklist, client)
        except AlmaToolsError as exc:
            result.value = f"<span style='color:#b00020'>{html.escape(str(exc))}</span>"
            return
        done = int(frame["done"].sum()) if len(frame) else 0
        result.value = f"<p><b>{done} of {len(frame)} approved pairs done.</b></p>" + _frame_html(frame)

    button.on_click(run)
    box = widgets.VBox([widgets.HBox([button]), result])  # in a row: the button as wide as its label
    box.button, box.result = button, result
    return box


def build_merge_exports(worklist: Worklist, folder: Path | str | None = None) -> widgets.VBox:
    """A button that writes ``merge_list.csv``, ``merge_review.xlsx`` and ``merge_worklist.html``, under a
    warning that a merge in Alma cannot be undone.
    Attributes: ``warning``, ``button``, ``result`` (HTML naming the files, as links that open in Lab or the app)."""
    button = widgets.Button(description="Write the exports", button_style="primary", icon="download",
                            layout=widgets.Layout(width="auto"))
    button.add_class("almatools-write-exports")
    result = widgets.HTML()
    # Said before the button, not only in the files: the export is the last step before staff act in Alma.
    warning = widgets.HTML(
        "<div class='almatools-merge-irreversible' role='note' style='border-left:6px solid #c62828;"
        "background:#fdecea;padding:6px 12px;margin:4px 0'><b style='color:#c62828'>A merge in Alma cannot be "
        "undone.</b> Merge Users deletes the FROM record for good; its loans, requests and fees move to TO. "
        "Only approved pairs are exported: check each one above before you export, and in Alma check both "
        "records on screen before each merge (Admin &gt; User Management &gt; Merge Users).</div>")

    def run(_=None) -> None:
        try:
            paths = export_all(worklist, folder)
        except (AlmaToolsError, OSError) as exc:
            result.value = f"<span style='color:#b00020'>{html.escape(str(exc))}</span>"
            return
        approved = len([p for p in worklist.pairs() if p.decision == "approved" and p.approvable])
        files = "".join(f"<li>{link_html(p)}</li>" for p in paths.values())
        result.value = (f"<p>{approved} approved pairs written to:</p><ul>{files}</ul><p>Merge them in Alma one "
                        "pair at a time, FROM into TO, as the worklist says: none can be undone.</p>")

    button.on_click(run)
    box = widgets.VBox([warning, widgets.HBox([button]), result])  # in a row: the button as wide as its label
    box.button, box.result, box.warning = button, result, warning
    return box
