"""The catalogue of finding rules.

Every finding the kit reports carries one of these rule ids; the sandbox's synthetic institution
plants cases of each and lists them in its ground-truth file under the same ids, and reports group
findings by them. Keep the ids stable: they appear in CSV files that libraries keep across runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(str, Enum):
    """How urgent a finding is. ``error``: fix before the next SIS load or purge run;
    ``warning``: fix soon; ``info``: worth a look."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Rule:
    id: str
    family: str  # sis | stale | policy | duplicate
    severity: Severity
    title: str
    action: str  # what to do, in a librarian's words


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
         "Move the purge date to the expiry date plus the retention period; as it is, the record may be deleted too early."),
    # Policy
    Rule("MISSING_FIELD", "policy", Severity.ERROR,
         "A mandatory field is empty",
         "Fill in the field named in the message."),
    Rule("SIS_PROFILE_MISSING", "policy", Severity.ERROR,
         "SIS-managed record with no SIS profile code (external_id)",
         "Set external_id to your SIS profile code, or make the record locally managed."),
    Rule("SIS_PROFILE_UNKNOWN", "policy", Severity.ERROR,
         "SIS-managed record with an external_id that is not one of the institution's SIS profiles",
         "Set external_id to one of the SIS profile codes in the policy file."),
    Rule("LOCAL_IN_SIS_GROUP", "policy", Severity.WARNING,
         "Locally managed record in a user group that the SIS loads",
         "If the person is in the SIS, convert the record to SIS-managed; otherwise move it to a local group."),
    Rule("ID_COLLISION", "policy", Severity.ERROR,
         "Identifier shared with another record once case and spacing are ignored",
         "Alma treats identifiers case-insensitively: change or remove one of them, or merge the records if they are one person."),
    Rule("MULTI_PREFERRED_EMAIL", "policy", Severity.WARNING,
         "More than one email marked preferred",
         "Keep one preferred email."),
    Rule("BAD_EMAIL", "policy", Severity.WARNING,
         "Malformed email address",
         "Correct the email address; notices to it cannot be delivered."),
    Rule("BAD_ID_FORMAT", "policy", Severity.WARNING,
         "Primary identifier does not follow the user group's format",
         "Correct the primary identifier to the format named in the message (it must match the SIS value for SIS-managed records)."),
    # Duplicates
    Rule("DUPLICATE", "duplicate", Severity.ERROR,
         "Records of one person",
         "Review the cluster and add the pairs to the merge worklist."),
]

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
