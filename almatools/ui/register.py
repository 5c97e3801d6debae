"""Registration panels: one patron (the Quick User Management form), convert to SIS-managed, bulk from CSV.

Each ``build_*`` returns a widget (a ``VBox`` subclass whose parts are attributes) and never displays
itself, so tests drive a panel headless: set ``panel.fields["last_name"].value``, call
``panel.register_button.click()``, read ``panel.result.value``. Every part carries a stable CSS class
(``almatools-<name>``) for the browser test. The logic lives in :mod:`almatools.registration` and
:mod:`almatools.bulk`; these panels only wire widgets to it.

Passwords stay in their widgets only until the account is created (then the boxes are emptied); they are
never shown, logged or written to a file.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from datetime import date, timedelta
from pathlib import Path

import ipywidgets as widgets

from almatools.client import AlmaClient
from almatools.errors import AlmaError
from almatools.policy import Policy
from almatools.registration import (
    IDENTIFIER_PREFIX,
    ExistingSearch,
    Issue,
    PatronForm,
    RegistrationResult,
    Validation,
    find_existing,
    register,
    renew,
    update_existing,
    validate,
)
from almatools.ui.banner import build_banner
from almatools.ui.errors import error_message
from almatools.ui.register_html import (
    _AMBER,
    _BLUE,
    _GREEN,
    _GREY,
    _RED,
    _box,
    _changes_table,
    _esc,
    _result_html,
    _search_html,
)

__all__ = ["RegistrationForm", "build_registration_form"]

FIELD_LABELS = {
    "affiliation": "Affiliation", "managed": "Patron has institutional record", "user_group": "User group",
    "first_name": "First name", "middle_name": "Middle name", "last_name": "Last name",
    "primary_id": "Primary identifier", "birth_date": "Birth date", "expiry_date": "Expiration date",
    "purge_date": "Purge date", "email_type": "Email type", "email_address": "Email address",
    "phone_number": "Phone number", "password": "Password", "password_confirm": "Verify password",
    "force_password_change": "Force password change on next login", "note": "Note (staff only)",
}
_EMAIL_TYPES = [("Personal", "personal"), ("School", "school"), ("Work", "work"), ("Alternative", "alternative")]
_IDENTIFYING = ("affiliation", "user_group", "managed", "first_name", "last_name", "primary_id", "birth_date",
                "email_address")
_LABEL_WIDTH = "230px"
# Marks a field in error the way Alma's own form does: a red frame and a pale red background.
_CSS = (f"<style>.almatools-invalid input, .almatools-invalid textarea, .almatools-invalid select "
        f"{{border: 2px solid {_RED} !important; background-color: #fff5f5 !important;}}</style>")


def _label(text: str) -> widgets.HTML:
    return widgets.HTML(value=text, layout=widgets.Layout(width=_LABEL_WIDTH, min_width=_LABEL_WIDTH))


class _DryRunSwitch:
    """The dry-run checkbox and the client it selects: the panel's client, or a copy with ``dry_run`` flipped.

    The copy shares the original's HTTP session and throttle (and so its key, which it never shows).
    """

    def __init__(self, client: AlmaClient) -> None:
        self.client = client
        self._other: AlmaClient | None = None
        self.checkbox = widgets.Checkbox(value=bool(client.dry_run), indent=False, layout=widgets.Layout(width="auto"),
                                         description="Dry run: check and plan, write nothing to Alma")
        self.checkbox.add_class("almatools-dry_run")
        self.banner = widgets.HTML(value=build_banner(client).value, layout=widgets.Layout(width="100%"))
        self.banner.add_class("almatools-banner")
        self.checkbox.observe(lambda _: setattr(self.banner, "value", build_banner(self.active).value), "value")

    @property
    def active(self) -> AlmaClient:
        if self.checkbox.value == bool(self.client.dry_run):
            return self.client
        if self._other is None:
            other = copy.copy(self.client)
            other.dry_run = not self.client.dry_run
            other.planned_writes = []
            self._other = other
        return self._other


class RegistrationForm(widgets.VBox):
    """The single-patron registration panel (see :func:`build_registration_form`).

    Attributes:
        fields: the input widgets by field name (``PatronForm`` names plus ``password_confirm``).
        messages: the message beside each field (an ``HTML`` widget), by field name.
        dry_run: the dry-run checkbox; banner: the environment banner (it says DRY RUN when on).
        check_button: "Check for existing accounts"; register_button: "Register" (enabled only when valid);
        clear_button: "New patron" (empties the form).
        status: what is still missing; existing: the accounts found; result: the outcome.
        validation: the latest :class:`~almatools.registration.Validation`; search: the latest
        :class:`~almatools.registration.ExistingSearch` (or None); outcome: the latest
        :class:`~almatools.registration.RegistrationResult` (or None).
    """

    def __init__(self, client: AlmaClient, policy: Policy, *, merge_requests: str | Path | None = None,
                 today: date | None = None, show_banner: bool = True,
                 sis_ids: Collection[str] | None = None) -> None:
        self.client, self.policy, self.merge_requests = client, policy, merge_requests
        self.sis_ids = sis_ids
        self._today = today
        self.switch = _DryRunSwitch(client)
        self.dry_run, self.banner = self.switch.checkbox, self.switch.banner
        self.validation: Validation | None = None
        self.search: ExistingSearch | None = None
        self.outcome: RegistrationResult | None = None
        self._search_key: tuple | None = None
        self._update_previewed: tuple | None = None  # (account, form) whose changes the page has shown
        self._touched: set[str] = set()
        self._show_all = False
        self._quiet = False

        text = {"placeholder": ""}
        self.fields: dict[str, widgets.Widget] = {
            "affiliation": widgets.Dropdown(options=[("(choose)", "")] + [(a.label, k) for k, a in policy.affiliations.items()],
                                            value=""),
            "managed": widgets.ToggleButtons(options=[("Yes: SIS-managed", "sis"), ("No: locally managed", "local")],
                                             value="local", style={"button_width": "175px"},
                                             tooltips=["The SIS load keeps the record up to date (EXTERNAL)",
                                                       "Staff keep the record up to date (INTERNAL)"]),
            "user_group": widgets.Dropdown(options=[("(from the affiliation)", "")] +
                                           [(f"{c}: {g.description}", c) for c, g in policy.groups.items()], value=""),
            "first_name": widgets.Text(**text), "middle_name": widgets.Text(**text), "last_name": widgets.Text(**text),
            "primary_id": widgets.Text(**text),
            "birth_date": widgets.Text(placeholder="YYYY-MM-DD"),
            "expiry_date": widgets.Text(placeholder="YYYY-MM-DD"), "purge_date": widgets.Text(placeholder="YYYY-MM-DD"),
            "email_type": widgets.Dropdown(options=_EMAIL_TYPES, value="personal"),
            "email_address": widgets.Text(placeholder="name@example.org"),
            "phone_number": widgets.Text(**text),
            "password": widgets.Password(placeholder="a temporary password"),
            "password_confirm": widgets.Password(placeholder="the same again"),
            "force_password_change": widgets.Checkbox(value=True, indent=False, description="(recommended)"),
            "note": widgets.Textarea(placeholder="seen by staff only", rows=2),
        }
        # One box per identifier type the policy describes (shown for the groups whose SIS profile matches on it).
        for code, kind in policy.identifier_types.items():
            self.fields[IDENTIFIER_PREFIX + code] = widgets.Text(placeholder=kind.hint)
        self.messages = {name: widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px")) for name in self.fields}
        self.labels = {name: _label(self._field_label(name)) for name in self.fields}
        rows = {}
        for name, widget in self.fields.items():
            if isinstance(widget, (widgets.Text, widgets.Password, widgets.Dropdown, widgets.Textarea)):
                widget.layout.width, widget.layout.min_width = "300px", "300px"
            widget.add_class(f"almatools-{name}")
            widget.add_class("almatools-field")
            self.messages[name].add_class(f"almatools-msg-{name}")
            rows[name] = widgets.HBox([self.labels[name], widget, self.messages[name]])
            widget.observe(lambda change, n=name: self._changed(n), "value")
        self.identifier_rows = {name: rows[name] for name in rows if name.startswith(IDENTIFIER_PREFIX)}
        self.password_box = widgets.VBox([rows["password"], rows["password_confirm"], rows["force_password_change"]])
        self.password_box.add_class("almatools-password-box")

        self.check_button = widgets.Button(description="Check for existing accounts", icon="search",
                                           layout=widgets.Layout(width="auto"))
        auto = {"width": "auto", "min_width": "fit-content"}  # never cut a label off
        self.register_button = widgets.Button(description="Register", button_style="primary", icon="user-plus",
                                              disabled=True, layout=widgets.Layout(**auto))
        self.clear_button = widgets.Button(description="New patron", icon="eraser", layout=widgets.Layout(**auto))
        # The actions a blocked registration offers on the person's existing account (shown only then).
        self.renew_button = widgets.Button(description="Renew the existing account", icon="refresh",
                                           button_style="success", layout=widgets.Layout(display="none", **auto))
        self.update_button = widgets.Button(description="Update the existing account", icon="pencil",
                                            button_style="info", layout=widgets.Layout(display="none", **auto))
        for name, button in (("check", self.check_button), ("register", self.register_button),
                             ("clear", self.clear_button), ("renew", self.renew_button),
                             ("update", self.update_button)):
            button.add_class(f"almatools-{name}")
        self.status, self.existing, self.result = widgets.HTML(), widgets.HTML(), widgets.HTML()
        for name in ("status", "existing", "result"):
            getattr(self, name).add_class(f"almatools-{name}")
        self.check_button.on_click(self._check)
        self.register_button.on_click(self._register)
        self.clear_button.on_click(self._clear)
        self.renew_button.on_click(self._renew)
        self.update_button.on_click(self._update)

        def section(title: str) -> widgets.HTML:
            return widgets.HTML(f"<h4 style='margin:10px 0 2px 0'>{title}</h4>")

        super().__init__([
            widgets.HTML(_CSS), *([self.banner] if show_banner else []), self.dry_run,
            widgets.HTML(f"<span style='color:{_GREY}'>Fields marked ★ are required by {_esc(policy.name)}.</span>"),
            section("Who"), rows["affiliation"], rows["managed"], rows["user_group"],
            section("Name and identifier"), rows["first_name"], rows["middle_name"], rows["last_name"],
            rows["primary_id"], *self.identifier_rows.values(), rows["birth_date"],
            section("Dates"), rows["expiry_date"], rows["purge_date"],
            section("Contact"), rows["email_type"], rows["email_address"], rows["phone_number"],
            self.password_box, rows["note"],
            widgets.HBox([self.check_button, self.register_button, self.renew_button, self.update_button,
                          self.clear_button], layout=widgets.Layout(flex_flow="row wrap")),
            self.status, self.existing, self.result,
        ])
        self.add_class("almatools-register-form")
        self._refresh()

    # -- reading the widgets ----------------------------------------------------------------------

    @property
    def today(self) -> date:
        return self._today or date.today()

    def _field_label(self, name: str) -> str:
        if name.startswith(IDENTIFIER_PREFIX):
            kind = self.policy.identifier_types.get(name[len(IDENTIFIER_PREFIX):])
            return kind.label if kind else name
        return FIELD_LABELS[name]

    @property
    def decision(self):
        """The decision of the latest search, if the form has not changed since (else None)."""
        if self.search is not None and self._search_key == self._key():
            return self.search.decision
        return None

    @property
    def active_client(self) -> AlmaClient:
        """The client the panel writes with: dry-run when the switch is on."""
        return self.switch.active

    def _password_wanted(self) -> str:
        """The password mode for the form as it stands: ``none``, ``temporary`` or ``optional``."""
        if self.fields["managed"].value == "sis":
            return "none"
        group = self.policy.group(self._group_code())
        return group.password if group else "optional"

    def _group_code(self) -> str:
        affiliation = self.policy.affiliations.get(self.fields["affiliation"].value)
        return self.fields["user_group"].value or (affiliation.group if affiliation else "")

    def patron_form(self) -> PatronForm:
        """The form as typed (the password only when the procedure wants one)."""
        f = {name: w.value for name, w in self.fields.items()}
        with_password = self._password_wanted() != "none"
        return PatronForm(affiliation=f["affiliation"], first_name=f["first_name"], middle_name=f["middle_name"],
                          last_name=f["last_name"], primary_id=f["primary_id"], user_group=f["user_group"],
                          managed=f["managed"], expiry_date=f["expiry_date"] or None,
                          purge_date=f["purge_date"] or None, email_address=f["email_address"],
                          email_type=f["email_type"], birth_date=f["birth_date"] or None,
                          phone_number=f["phone_number"], password=f["password"] if with_password else "",
                          force_password_change=bool(f["force_password_change"]), note=f["note"],
                          identifiers={name[len(IDENTIFIER_PREFIX):]: str(value) for name, value in f.items()
                                       if name.startswith(IDENTIFIER_PREFIX) and value})

    def _key(self) -> tuple:
        names = (*_IDENTIFYING, *self.identifier_rows)
        return tuple(str(self.fields[n].value).strip().casefold() for n in names)

    # -- live validation --------------------------------------------------------------------------

    def _changed(self, name: str) -> None:
        if self._quiet:
            return
        self._touched.add(name)
        if name in ("affiliation", "user_group", "expiry_date", "primary_id"):
            self._apply_defaults(name)
        self._refresh()

    def _apply_defaults(self, name: str) -> None:
        """The affiliation sets the group and the SIS choice; the group sets the default expiration date."""
        self._quiet = True
        try:
            affiliation = self.policy.affiliations.get(self.fields["affiliation"].value)
            if name == "affiliation" and affiliation:
                self.fields["user_group"].value = affiliation.group
                self.fields["managed"].value = affiliation.managed
            group = self.policy.group(self._group_code())
            if group and name in ("affiliation", "user_group") and "expiry_date" not in self._touched:
                self.fields["expiry_date"].value = (self.today + timedelta(days=group.default_expiry_days)).isoformat()
            # The purge date the validation sets by default is shown in its box (unless staff typed one).
            if "purge_date" not in self._touched:
                try:
                    expiry = date.fromisoformat(str(self.fields["expiry_date"].value).strip())
                except ValueError:
                    expiry = None
                self.fields["purge_date"].value = (
                    (expiry + timedelta(days=self.policy.retention_days)).isoformat() if expiry else "")
            # Likewise an identifier that defaults to the primary identifier (e.g. the University ID).
            for code in (group.sis_match_ids if group else ()):
                kind, box = self.policy.identifier_types[code], IDENTIFIER_PREFIX + code
                if kind.default_from == "primary_id" and box not in self._touched:
                    self.fields[box].value = kind.normalise(self.fields["primary_id"].value)
        finally:
            self._quiet = False

    def _required(self) -> set[str]:
        needed = {"affiliation", *(f for f in self.policy.mandatory if f in self.fields)}
        if self._password_wanted() == "temporary":
            needed |= {"password", "password_confirm"}
        return needed

    def _refresh(self, show_all: bool = False) -> Validation:
        """Validate the form, mark fields, enable Register only when nothing blocks."""
        self._show_all = self._show_all or show_all
        wanted = self._password_wanted()
        self.password_box.layout.display = "none" if wanted == "none" else ""
        group = self.policy.group(self._group_code())
        self.fields["primary_id"].placeholder = group.id_hint if group else "choose the affiliation first"
        wanted_ids = {IDENTIFIER_PREFIX + code for code in (group.sis_match_ids if group else ())}
        for name, row in self.identifier_rows.items():
            row.layout.display = "" if name in wanted_ids or self.fields[name].value else "none"
        required = self._required()
        for name, label in self.labels.items():
            label.value = _esc(self._field_label(name)) + (f" <b style='color:{_RED}'>★</b>" if name in required else "")

        checked = validate(self.patron_form(), self.policy, today=self.today)
        issues = list(checked.issues)
        pw, again = self.fields["password"].value, self.fields["password_confirm"].value
        if wanted != "none" and (pw or again) and pw != again:
            issues.append(Issue.of("PASSWORDS_DIFFER", "password_confirm",
                                "The two passwords differ: type the same password in both boxes."))
        elif wanted == "temporary" and not again:
            issues.append(Issue.of("MISSING_FIELD", "password_confirm", "Type the password again."))
        self.validation = checked
        by_field: dict[str, list[Issue]] = {}
        for issue in issues:
            by_field.setdefault(issue.field if issue.field in self.fields else "affiliation", []).append(issue)
        for name, widget in self.fields.items():
            shown = [i for i in by_field.get(name, [])
                     if i.severity == "info" or self._show_all or name in self._touched]
            errors = [i for i in shown if i.blocking]
            if errors:
                widget.add_class("almatools-invalid")  # red through the panel's style sheet (_CSS)
            else:
                widget.remove_class("almatools-invalid")
            self.messages[name].value = "<br>".join(
                f"<span style='color:{_RED if i.blocking else _AMBER if i.severity == 'warning' else _GREY}'>"
                f"{_esc(i.message)}</span>" for i in shown)
        blocking = [i for i in issues if i.blocking]
        decision = self.decision
        blocked = decision is not None and decision.blocked
        self.register_button.disabled = bool(blocking) or blocked
        offers = decision.offers if blocked else ()
        self.renew_button.layout.display = "" if "renew" in offers else "none"
        self.update_button.layout.display = "" if "update" in offers else "none"
        if blocked:
            headline = ("this person already has an account." if decision.target
                        else "do not create this account by hand.")  # e.g. the SIS load brings it
            self.status.value = (f"<span class='almatools-blocked' style='color:{_AMBER}'><b>Blocked: {headline}</b> "
                                 f"{_esc(decision.reason)}</span>")
        elif blocking:
            order = {name: n for n, name in enumerate(self.fields)}  # as the form shows them, top to bottom
            ranked = sorted(blocking, key=lambda i: order.get(i.field, len(order)))
            names = list(dict.fromkeys(self._field_label(i.field) if (i.field in self.fields) else i.field
                                       for i in ranked))
            self.status.value = f"<span style='color:{_GREY}'>Still to fix before registering: {_esc(', '.join(names))}.</span>"
        else:
            self.status.value = (f"<span style='color:{_GREEN}'>The form is complete: check for existing accounts, "
                                 "then register.</span>")
        if self.search is not None and self._search_key != self._key():
            self.existing.value = (f"<span style='color:{_GREY}'>The form changed since the last check; "
                                   "Register checks again first.</span>")
        return checked

    # -- actions ----------------------------------------------------------------------------------

    def _run_search(self) -> ExistingSearch | None:
        try:
            search = find_existing(self.active_client, self.patron_form(), self.policy, today=self.today,
                                   sis_ids=self.sis_ids)
        except AlmaError as exc:
            self.search, self._search_key = None, None
            self.existing.value = _box("failed", error_message(exc, self.active_client, then="then click again"))
            return None
        self.search, self._search_key = search, self._key()
        self.existing.value = _search_html(search)
        self._refresh()
        return search

    def _check(self, _=None) -> None:
        self._refresh(show_all=True)
        form = self.patron_form()
        if not (form.primary_id.strip() or form.email_address.strip() or (form.first_name and form.last_name)):
            self.existing.value = _box("failed", "Enter the primary identifier, the email address or the name first.")
            return
        self._run_search()

    def _register(self, _=None) -> None:
        checked = self._refresh(show_all=True)
        decision = self.decision
        if decision is not None and decision.blocked:  # the button is disabled; a stray click is refused the same
            self.outcome = RegistrationResult("blocked", checked.form.primary_id, decision.reason, checked.issues,
                                              decision=decision)
            self.result.value = _result_html(self.outcome)
            return
        if self.register_button.disabled or not checked.ok:
            self.result.value = _box("failed", "Fix the fields marked in red first.")
            return
        search = self.search if self._search_key == self._key() else None
        if search is None:
            search = self._run_search()
            if search is None:
                self.result.value = _box("failed", "The check for existing accounts failed, so nothing was created.")
                return
            if search.candidates and not search.blocked:
                self.result.value = _box("blocked", "Accounts that may belong to this person are listed above. Read "
                                                    "them, then click Register again to create the new account.")
                return
        self.outcome = outcome = register(self.active_client, checked, search=search,
                                          merge_requests=self.merge_requests, policy=self.policy)
        self.result.value = _result_html(outcome)
        if outcome.status == "blocked":
            self._refresh()
        if outcome.status in ("created", "planned"):
            if outcome.status == "created":  # a dry run keeps them: the real run that follows needs them
                self._quiet = True
                self.fields["password"].value = self.fields["password_confirm"].value = ""
                self._quiet = False
            self.search, self._search_key = None, None  # the person now exists: a second click is refused
            self._touched.clear()
            self._show_all = False
            self._refresh()
            if outcome.status == "planned":  # a dry run: nothing exists in Alma, and the page must not say so
                self.status.value = (f"<span style='color:{_BLUE}'>Dry run: checked and planned, nothing was created "
                                     "in Alma. Untick Dry run, then click Register to create the account.</span>")
            else:
                self.status.value = (f"<span style='color:{_GREEN}'>Registered. Click New patron to register "
                                     "someone else.</span>")

    def _renew(self, _=None) -> None:
        """Renew the existing account the decision names (GET, change, PUT), then search again."""
        decision = self.decision
        if decision is None or "renew" not in decision.offers:
            self.result.value = _box("failed", "Check for existing accounts first: there is no account to renew.")
            return
        self.outcome = outcome = renew(self.active_client, decision.target, self.policy, today=self.today)
        self.result.value = _result_html(outcome)
        if outcome.status in ("renewed", "unchanged"):
            self._run_search()  # the list shows the new expiration date; the decision still blocks creation

    def _update(self, _=None) -> None:
        """Update the existing account with the form's details (GET, change, PUT), then search again.

        The first click only shows what would change, old value beside new (a form typed with a typo, or
        for a namesake, would otherwise overwrite the account's name); a second click with the form
        unchanged writes it.
        """
        decision = self.decision
        if decision is None or "update" not in decision.offers:
            self.result.value = _box("failed", "Check for existing accounts first: there is no account to update.")
            return
        checked = self._refresh(show_all=True)
        wrong = [i for i in checked.issues if i.blocking and i.field != "primary_id"]
        if wrong:
            self.result.value = _box("failed", "Fix the fields marked in red first: they are what the update writes.")
            return
        shown = (decision.target, self._key())
        if self._update_previewed != shown:
            preview = copy.copy(self.active_client)
            preview.dry_run, preview.planned_writes = True, []
            planned = update_existing(preview, decision.target, checked, policy=self.policy)
            if planned.status != "planned":  # unchanged, or the account cannot be read: nothing to confirm
                self.outcome = planned
                self.result.value = _result_html(planned)
                return
            body = preview.planned_writes[-1].body if preview.planned_writes else {}
            self._update_previewed = shown
            self.outcome = planned
            self.result.value = _box("planned", f"Check what the update changes in {decision.target}, then click "
                                                "Update the existing account again to write it.",
                                     _changes_table(planned.user or {}, body or {}))
            return
        self._update_previewed = None
        self.outcome = outcome = update_existing(self.active_client, decision.target, checked, policy=self.policy)
        self.result.value = _result_html(outcome)
        if outcome.status in ("updated", "unchanged"):
            self._run_search()

    def _clear(self, _=None) -> None:
        self._quiet = True
        try:
            for name, widget in self.fields.items():
                if name == "managed":
                    widget.value = "local"
                elif name == "email_type":
                    widget.value = "personal"
                elif name == "force_password_change":
                    widget.value = True
                else:
                    widget.value = ""
        finally:
            self._quiet = False
        self._touched.clear()
        self._show_all = False
        self.search, self._search_key, self.outcome = None, None, None
        self.existing.value = self.result.value = ""
        self._refresh()


def build_registration_form(client: AlmaClient, policy: Policy, *, merge_requests: str | Path | None = None,
                            today: date | None = None, show_banner: bool = True,
                            sis_ids: Collection[str] | None = None) -> RegistrationForm:
    """The single-patron registration form of both staff procedures.

    Fields marked ★ are the policy's mandatory ones; the affiliation fills in the group, the SIS choice and
    a default expiration date; the password boxes appear only for locally managed patrons whose group
    gets an Alma password. Fields turn red with the message beside them as soon as they are touched (all
    of them once staff click a button); "Register" is enabled only when nothing blocks. "Register" always
    searches for existing accounts first (if the form changed since "Check for existing accounts"); when
    it finds possible matches it shows them and waits for a second click.

    Args:
        client: the Alma client (a dry-run client, or the dry-run switch, plans instead of writing).
        policy: the institution's policy.
        merge_requests: the merge-request CSV that seed 003's old → new requests are appended to.
        today: the date validation and defaults judge by (default: today).
        show_banner: the form shows the environment banner above its fields; False when the page shows
            ``form.banner`` itself (first on the page, as notebook 01 does). It follows the dry-run switch.
        sis_ids: the primary identifiers of the current SIS extract
            (:func:`~almatools.registration.sis_identifiers`): a patron the SIS load will bring is registered
            only as SIS-managed under that identifier, never locally managed.
    """
    return RegistrationForm(client, policy, merge_requests=merge_requests, today=today, show_banner=show_banner,
                            sis_ids=sis_ids)
