"""Patron registration: the institution's procedure, enforced before anything reaches Alma.

:func:`validate` checks a :class:`PatronForm` (what staff type) against a :class:`~almatools.policy.Policy`
and returns a list of :class:`Issue` — it never raises on bad data — and, when nothing blocks, the Alma
user record to create. Each issue names the field, its severity and what to do, in a librarian's words.

:func:`find_existing` searches Alma for the person and :func:`decide` (pure: no I/O) turns what it found
into one decision, shared by the form, the bulk CSV and :func:`register`: ``create``, ``create_merge``
(a former affiliate moving to a new affiliation: a new account plus a merge request old -> new), or a
block that offers the right action on the existing account: ``renew`` (:func:`renew`), ``update``
(:func:`update_existing`), ``add_role`` (staff: one account with both roles) or ``block`` (nothing to do
here yet, e.g. a recent graduate whose institutional login is still active).

Nothing registration sends carries Alma's output-only fields (:data:`OUTPUT_ONLY_FIELDS`).
"""

from __future__ import annotations

from almatools.registration.actions import (
    MERGE_REQUEST_COLUMNS,
    RegistrationResult,
    convert_to_sis,
    explain_alma_error,
    record_merge_request,
    register,
    renew,
    update_existing,
)
from almatools.registration.existing import (
    ACTIONS,
    PATRON_ROLE,
    Candidate,
    Decision,
    ExistingSearch,
    decide,
    find_existing,
    renewal_dates,
    sis_identifiers,
)
from almatools.registration.validation import (
    COMMON_PASSWORDS,
    IDENTIFIER_PREFIX,
    OUTPUT_ONLY_FIELDS,
    Issue,
    PatronForm,
    Validation,
    password_problem,
    strip_output_only,
    validate,
)

__all__ = [
    "PatronForm",
    "Issue",
    "Validation",
    "validate",
    "password_problem",
    "COMMON_PASSWORDS",
    "Candidate",
    "ExistingSearch",
    "find_existing",
    "sis_identifiers",
    "RegistrationResult",
    "register",
    "convert_to_sis",
    "record_merge_request",
    "explain_alma_error",
    "Decision",
    "decide",
    "renew",
    "update_existing",
    "OUTPUT_ONLY_FIELDS",
    "strip_output_only",
    "ACTIONS",
    "IDENTIFIER_PREFIX",
    "MERGE_REQUEST_COLUMNS",
    "PATRON_ROLE",
    "renewal_dates",
]
