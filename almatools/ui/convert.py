"""The panel that converts a locally managed record to SIS-managed (Patron has institutional record)."""

from __future__ import annotations

import copy

import ipywidgets as widgets

from almatools.client import AlmaClient
from almatools.policy import Policy
from almatools.registration import (
    RegistrationResult,
    convert_to_sis,
)
from almatools.ui.register import FIELD_LABELS, _label
from almatools.ui.register_html import _GREY, _RED, _box, _result_html

__all__ = ["ConvertPanel", "build_convert_panel"]

class ConvertPanel(widgets.VBox):
    """Convert a locally managed patron to SIS-managed (see :func:`build_convert_panel`).

    Attributes:
        primary_id: the identifier box; check_button: runs the checks (a dry run);
        convert_button: converts, enabled only after a passing check of the same identifier;
        result: the outcome; outcome: the latest :class:`~almatools.registration.RegistrationResult`.
    """

    def __init__(self, client: AlmaClient, policy: Policy, *, sis_ids: set[str] | None = None) -> None:
        self.client, self.policy, self.sis_ids = client, policy, sis_ids
        self.outcome: RegistrationResult | None = None
        self._checked_id: str | None = None
        self.primary_id = widgets.Text(placeholder="primary identifier of a locally managed patron")
        self.check_button = widgets.Button(description="Check", icon="search")
        self.convert_button = widgets.Button(description="Convert to SIS-managed", button_style="warning",
                                             icon="exchange", disabled=True, layout=widgets.Layout(width="auto"))
        self.result = widgets.HTML()
        for name, w in (("convert-primary_id", self.primary_id), ("convert-check", self.check_button),
                        ("convert-button", self.convert_button), ("convert-result", self.result)):
            w.add_class(f"almatools-{name}")
        self.primary_id.observe(self._changed, "value")
        self.check_button.on_click(self._check)
        self.convert_button.on_click(self._convert)
        super().__init__([
            widgets.HTML(f"<span style='color:{_GREY}'>Alma cannot turn an SIS-managed account back into a local one: "
                         "check first; convert only when the SIS sends this identifier.</span>"),
            widgets.HBox([_label(f"{FIELD_LABELS['primary_id']} <b style='color:{_RED}'>★</b>"), self.primary_id,
                          self.check_button, self.convert_button]),
            self.result])
        self.add_class("almatools-convert-panel")

    def _changed(self, _=None) -> None:
        self.convert_button.disabled = True
        self._checked_id = None

    def _check(self, _=None) -> None:
        dry = copy.copy(self.client)
        dry.dry_run, dry.planned_writes = True, []
        self.outcome = outcome = convert_to_sis(dry, self.primary_id.value, self.policy, sis_ids=self.sis_ids)
        ready = outcome.status == "planned"
        if ready:
            self.result.value = _box("ready", f"The checks passed: {outcome.primary_id} can become SIS-managed "
                                     f"(external id {self.policy.sis_profiles[0]}). Click Convert to do it.")
        else:
            self.result.value = _result_html(outcome)
        self._checked_id = self.primary_id.value if ready else None
        self.convert_button.disabled = not ready

    def _convert(self, _=None) -> None:
        if self._checked_id is None or self._checked_id != self.primary_id.value:
            self.result.value = _box("failed", "Check the identifier first.")
            return
        self.outcome = outcome = convert_to_sis(self.client, self.primary_id.value, self.policy, sis_ids=self.sis_ids)
        self.result.value = _result_html(outcome)
        self.convert_button.disabled = True
        self._checked_id = None


def build_convert_panel(client: AlmaClient, policy: Policy, *, sis_ids: set[str] | None = None) -> ConvertPanel:
    """Convert a locally managed patron to SIS-managed (seed 000's FAQ), as its own action with its checks.

    "Check" runs :func:`~almatools.registration.convert_to_sis` on a dry-run copy of the client: the account
    exists and is local, its group is SIS-loaded, its identifier has the SIS format (and, given ``sis_ids``,
    is in the current SIS extract). "Convert to SIS-managed" is enabled only after a passing check.

    Args:
        client: the Alma client (a dry-run client plans the change instead).
        policy: the institution's policy.
        sis_ids: primary ids of the current SIS extract, if at hand.
    """
    return ConvertPanel(client, policy, sis_ids=sis_ids)
