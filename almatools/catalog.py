"""The one catalogue of rules, and the one severity vocabulary, of registration and quality.

Every finding the kit reports carries one of these rule ids; the sandbox's synthetic institution
plants cases of each and lists them in its ground-truth file under the same ids, and reports group
findings by them. Keep the ids stable: they appear in CSV files that libraries keep across runs.

A rule can be checked in two places, with a severity for each:

- on an **existing record** (the data-quality findings, :data:`RULES`): ``severity``;
- on a **record being entered** (registration, the form and the bulk CSV, :data:`ENTRY_RULES`):
  ``at_entry``. An ``error`` there blocks the record: nothing is sent to Alma until it is fixed.

Where the two differ, the rule says why (``why``), and the difference is deliberate:

- ``BAD_EMAIL`` and ``BAD_ID_FORMAT`` block at entry (the person is at the desk, the fix takes a
  second, and a wrong primary id becomes a second account at the next SIS load) but are warnings on
  an existing record (it works for loans today; fix it soon).
- ``PURGE_TOO_SOON`` is a warning at entry (staff chose that date in front of the suggested one, e.g.
  for a short visit) but an error on an existing record (nobody chose it knowingly, and the Purge
  Users job deletes the record early).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["ENTRY_RULES", "RULES", "Rule", "Severity", "entry_severity"]


class Severity(str, Enum):
    """How urgent a finding is. ``error``: fix before the next SIS load or purge run;
    ``warning``: fix soon; ``info``: worth a look."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Rule:
    """One rule of the catalogue.

    Attributes:
        id: The stable rule id.
        family: ``sis``, ``stale``, ``policy``, ``duplicate`` (existing records) or ``entry``
            (checked only on a record being entered).
        severity: On an existing record (for an ``entry`` rule: the same as ``at_entry``).
        title: What is wrong, in a few words.
        action: What to do, in a librarian's words.
        at_entry: The severity when a record is being registered; None when registration does not check it.
        why: Why ``at_entry`` differs from ``severity`` (required when it does).
    """

    id: str
    family: str
    severity: Severity
    title: str
    action: str
    at_entry: Severity | None = None
    why: str = ""


_RULES = [
    # SIS mismatch
    Rule("SIS_LOCAL_OTHER_ID", "sis", Severity.ERROR,
         "Locally managed record of a person the SIS sends under another identifier",
         "Merge this local record into the SIS record (the SIS record survives), or the person keeps two accounts."),
    Rule("SIS_LOCAL_SAME_ID", "sis", Severity.ERROR,
         "Locally managed record whose identifier the SIS extract has",
         "Convert the record to SIS-managed (Patron has institutional record = Yes); otherwise the next SIS load "
         "rejects it as 'User is not external'."),
    # Stale and retention
    Rule("STALE_SIS_MISSING", "stale", Severity.WARNING,
         "SIS-managed record that the current SIS extract no longer has",
         "Check whether the person left; set an expiry and purge date, or convert to locally managed if they keep borrowing."),
    Rule("EXPIRED_ACTIVE", "stale", Severity.WARNING,
         "Expired but still active",
         "Set the status to inactive, or extend the expiry date if the person still borrows."),
    Rule("NO_PURGE_DATE", "stale", Severity.WARNING,
         "No purge date: the Purge Users job will never remove this record",
         "Set the purge date to the expiry date plus the retention period."),
    Rule("PURGE_PASSED", "stale", Severity.INFO,
         "Purge date has passed: the next Purge Users run will delete this record",
         "Nothing, if the person is gone; otherwise move the purge date before the next purge run."),
    Rule("PURGE_TOO_SOON", "stale", Severity.ERROR,
         "Purge date sooner than expiry plus the retention period",
         "Move the purge date to the expiry date plus the retention period; as it is, the record may be deleted too early.",
         at_entry=Severity.WARNING,
         why="at entry staff chose the date over the suggested one; on a record nobody did, and the purge job acts"),
    # Policy
    Rule("MISSING_FIELD", "policy", Severity.ERROR,
         "A mandatory field is empty",
         "Fill in the field named in the message.", at_entry=Severity.ERROR),
    Rule("SIS_PROFILE_MISSING", "policy", Severity.ERROR,
         "SIS-managed record with no SIS profile code (external_id)",
         "Set external_id to your SIS profile code, or make the record locally managed."),
    Rule("SIS_PROFILE_UNKNOWN", "policy", Severity.ERROR,
         "SIS-managed record with an external_id that is not one of the institution's SIS profiles",
         "Set external_id to one of the SIS profile codes in the policy file."),
    Rule("LOCAL_IN_SIS_GROUP", "policy", Severity.WARNING,
         "Locally managed record in a user group that the SIS loads",
         "If the person is in the SIS, convert the record to SIS-managed; otherwise move it to a local group.",
         at_entry=Severity.WARNING),
    Rule("ID_COLLISION", "policy", Severity.ERROR,
         "Identifier shared with another record once case and spacing are ignored",
         "Alma treats identifiers case-insensitively: change or remove one of them, or merge the records if they are "
         "one person."),
    Rule("MULTI_PREFERRED_EMAIL", "policy", Severity.WARNING,
         "More than one email marked preferred",
         "Keep one preferred email."),
    Rule("BAD_EMAIL", "policy", Severity.WARNING,
         "Malformed email address",
         "Correct the email address; notices to it cannot be delivered.", at_entry=Severity.ERROR,
         why="at entry the person is there to spell it; an existing record still works for loans"),
    Rule("BAD_ID_FORMAT", "policy", Severity.WARNING,
         "Primary identifier does not follow the user group's format",
         "Correct the primary identifier to the format named in the message (it must match the SIS value for "
         "SIS-managed records).",
         at_entry=Severity.ERROR,
         why="a new record with a wrong id becomes a second account at the next SIS load; an existing one is fixed soon"),
    # Duplicates
    Rule("DUPLICATE", "duplicate", Severity.ERROR,
         "Records of one person",
         "Review the cluster and add the pairs to the merge worklist."),
]



def _entry(rule_id: str, severity: Severity, title: str, action: str = "Follow the message.") -> Rule:
    return Rule(rule_id, "entry", severity, title, action, at_entry=severity)


# Checked only on a record being entered (registration's form, the bulk CSV).
_ENTRY_ONLY = [
    _entry("UNKNOWN_AFFILIATION", Severity.ERROR, "Affiliation not in the policy", "Choose one of the listed affiliations."),
    _entry("GROUP_DISAGREES", Severity.WARNING, "User group differs from the affiliation's usual group"),
    _entry("UNKNOWN_GROUP", Severity.ERROR, "User group not in the policy", "Choose one of the listed user groups."),
    _entry("BAD_CHOICE", Severity.ERROR, "A choice outside the allowed values"),
    _entry("MANAGED_DISAGREES", Severity.WARNING, "Managed by SIS or locally, against the group's usual way"),
    _entry("BAD_DATE", Severity.ERROR, "A date that is not a date, or not possible"),
    _entry("EXPIRY_NOT_FUTURE", Severity.ERROR, "Expiry date not in the future"),
    _entry("EXPIRY_DEFAULTED", Severity.INFO, "Expiry date taken from the group's default"),
    _entry("PURGE_BEFORE_EXPIRY", Severity.ERROR, "Purge date before the expiry date"),
    _entry("PURGE_DEFAULTED", Severity.INFO, "Purge date taken from expiry plus the retention period"),
    _entry("NO_PASSWORD_WANTED", Severity.ERROR, "A password where the group signs in elsewhere"),
    _entry("BAD_PASSWORD", Severity.ERROR, "A password Alma refuses (error 500038)"),
    _entry("FORCE_CHANGE_OFF", Severity.WARNING, "The patron is not asked to change the password"),
    _entry("PASSWORDS_DIFFER", Severity.ERROR, "The two passwords typed differ"),
    _entry("UNKNOWN_IDENTIFIER_TYPE", Severity.ERROR, "Identifier type not in the policy"),
    _entry("IDENTIFIER_DEFAULTED", Severity.INFO, "Identifier taken from the primary identifier"),
    _entry("BAD_IDENTIFIER", Severity.ERROR, "Identifier not in its type's format"),
    _entry("DUPLICATE_IN_FILE", Severity.ERROR,
           "One person twice in one registration file (identifier, email, or name and birth date)",
           "Keep one row per person."),
]

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
"""The rules checked on existing records (the data-quality findings), in report order."""

ENTRY_RULES: dict[str, Rule] = {rule.id: rule for rule in (*_RULES, *_ENTRY_ONLY) if rule.at_entry is not None}
"""The rules checked on a record being entered (registration), with their ``at_entry`` severity."""


def entry_severity(rule_id: str) -> str:
    """The severity (``"error"``, ``"warning"``, ``"info"``) of a registration rule.

    Raises:
        KeyError: ``rule_id`` is not a registration rule of the catalogue (a mistake in the kit).
    """
    return ENTRY_RULES[rule_id].at_entry.value  # type: ignore[union-attr]
