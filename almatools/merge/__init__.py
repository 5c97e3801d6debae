"""Merge worklists: from duplicate clusters to a reviewed, safe FROM → TO list.

Alma has no merge API. Staff merge one pair at a time in Admin > User Management > Merge Users: the
FROM record is deleted ("Fully Remove"), its loans, requests, fines and fees move to TO with the segments
staff choose, FROM may hold no role but Patron, and nothing can be undone. So this package only prepares
the work: :func:`propose` turns duplicate clusters (and the merge requests recorded at registration) into
FROM → TO pairs with their reasons and checks; a :class:`Worklist` keeps them in a folder with an
append-only journal of review decisions; :func:`check_with_api` re-reads the records from Alma; the
exports (:func:`export_merge_list`, :func:`export_review_workbook`, :func:`export_worklist_html`) give
the approved list, a sign-off workbook and a printable worklist with the Alma steps; :func:`verify`
confirms afterwards that every FROM is gone and every TO is still there.

Survivor order
--------------
A cluster of n records becomes n-1 pairs into one survivor (TO). Between two records the first rule
that tells them apart decides:

1. **Current SIS record**: SIS-managed (``EXTERNAL``) and its primary id is in the current SIS extract.
   The SIS keeps updating it; merged away, the next SIS load would create it again.
2. **Staff role**: holds a role other than Patron (``200``). Staff keep one account with both roles,
   and Alma refuses a FROM with any role but Patron.
3. **Newer affiliation**. Alma records no creation date, so "newer" is read from the data:
   (a) a record that is not a *past* SIS record beats one that is (a past SIS record is SIS-managed
   but the extract no longer has it: the person left, as the student record of the alum in the
   registration procedure whose new local account keeps the person); then (b) the later expiry
   date (no expiry date counts as the oldest).
4. **Most recent activity**: the later ``last_patron_activity_date`` where the data has it; then more
   loans plus requests; then more fees; then ``ACTIVE`` before ``INACTIVE``.
5. Tie: the lower primary id (ignoring case) is kept.

A cluster with two or more current SIS records is never proposed: the person has two SIS identities,
which only the SIS can fix; it is listed in :attr:`Worklist.held` for manual review.

Checks
------
Every pair carries :class:`Check` results, computed from the records (the users data, overlaid with
what :func:`check_with_api` read from Alma) and from the other pairs of the worklist. Hard checks
block approval: FROM holds only the Patron role (unknown roles fail until the API check), both
records exist, FROM is not TO, no chains (a record is never both a FROM and a TO, nor the FROM of two
pairs), not two current SIS records, FROM is not the current SIS record. Soft checks warn: FROM has
loans, requests or fees (they move), a linked or network account, TO is inactive or expired.

Folder layout of a worklist: ``proposals.json`` (written once, atomically) and ``decisions.jsonl``
(an :class:`almatools.files.AppendLog`: one JSON event per line, fsynced on every write; loading replays
it under the kit's one torn-tail policy).

Modules
-------
``records`` (fields, survivor order, reasons), ``checks`` (the checks of a pair), ``worklist`` (pairs,
the worklist and its journal), ``proposals`` (clusters, findings and requests to a worklist), ``alma``
(reading records from Alma, verifying merges), ``exports`` (the list, the workbook, the printable page).
Everything public is imported here: ``from almatools import merge`` is all a caller needs.
"""

from __future__ import annotations

from almatools.errors import MergeError
from almatools.merge.alma import check_with_api, users_from_api, verify
from almatools.merge.checks import Check, pair_checks
from almatools.merge.exports import (
    alma_steps,
    export_all,
    export_merge_list,
    export_review_workbook,
    export_worklist_html,
    segments_to_copy,
)
from almatools.merge.proposals import (
    add_requests,
    findings_folder,
    propose,
    read_findings,
    read_requests,
    worklist_problems,
)
from almatools.merge.records import (
    DISPLAY_FIELDS,
    JOURNAL_FILE,
    MERGE_LIST_COLUMNS,
    PROPOSALS_FILE,
    choose_survivor,
    survivor_rank,
)
from almatools.merge.worklist import Pair, Worklist

__all__ = [
    "Check",
    "Pair",
    "Worklist",
    "MergeError",
    "propose",
    "pair_checks",
    "survivor_rank",
    "choose_survivor",
    "read_findings",
    "read_requests",
    "add_requests",
    "findings_folder",
    "worklist_problems",
    "users_from_api",
    "check_with_api",
    "verify",
    "segments_to_copy",
    "alma_steps",
    "export_merge_list",
    "export_review_workbook",
    "export_worklist_html",
    "export_all",
    "MERGE_LIST_COLUMNS",
    "DISPLAY_FIELDS",
    "PROPOSALS_FILE",
    "JOURNAL_FILE",
]
