"""Words a librarian reads instead of the kit's column names: one list for every panel and for the Excel
workbooks (CSV files keep the column names, for other programs)."""

from __future__ import annotations

__all__ = ["FIELD_LABELS", "label"]

FIELD_LABELS: dict[str, str] = {
    "primary_id": "Primary id", "first_name": "First name", "middle_name": "Middle name", "last_name": "Last name",
    "birth_date": "Birth date", "user_group": "User group", "account_type": "Account type",
    "external_id": "SIS profile", "record_type": "Record type", "status": "Status", "expiry_date": "Expiry date",
    "purge_date": "Purge date", "email": "Preferred email", "emails": "All emails", "phone": "Phone",
    "identifiers": "Identifiers", "line1": "Street", "city": "City", "postal_code": "Postal code",
    "patron_type": "Patron type", "statistics": "Statistics", "roles": "Roles (200 = Patron)", "loans": "Loans",
    "requests": "Requests", "fees": "Fees", "last_patron_activity_date": "Last activity",
    # findings.csv
    "rule_id": "Rule", "severity": "Severity", "family": "Kind", "other_primary_id": "Other record",
    "field": "Field", "message": "Problem", "action": "What to do", "new_since_last_run": "New since the last run",
    "title": "Title", "what_to_do": "What to do", "findings": "Findings", "last_run": "Last run", "new": "New",
    "resolved": "Resolved", "item": "Item", "value": "Value",
    # duplicate clusters and merge lists
    "cluster_id": "Cluster", "match_probability": "Match probability", "evidence": "Evidence",
    "other_primary_ids": "Other records", "pair_id": "Pair", "from_primary_id": "FROM (merged away)",
    "from_name": "FROM name", "to_primary_id": "TO (kept)", "to_name": "TO name", "reason": "Why",
}


def label(name: str) -> str:
    """The label of a field or column (the name itself, tidied, when it has none)."""
    return FIELD_LABELS.get(name, name.replace("_", " ").capitalize())
