"""Sandbox University: a synthetic Alma institution with planted data-quality problems.

:func:`generate_institution` makes the patron base of a fictional university that runs Alma with
the default policy (``almatools/policies/default.toml``): SIS-managed students and employees
(EXTERNAL, ``external_id`` ``"SIS"``), locally managed alumni, community, reciprocal and friends
borrowers and library staff (INTERNAL), with realistic names from Faker. It writes:

* ``sis_extract.zip``: what the SIS would send in its next Synchronize load, as Alma user XML files
  ``sis_0001.xml``… (``<users total_record_count="N">``, at most 20,000 users each);
* ``users_export.zip`` (with ``export=True``): every Alma user, as Export Users v2 XML files
  ``users_0001.xml``… (nulls written as ``xsi:nil``, so the export reads back losslessly);
* ``ground_truth.csv``: the planted problems (columns below);
* ``institution.json``: the :class:`InstitutionInfo`.

The full Alma user objects (exactly as ``GET /users/{id}`` returns them, with the person's loan,
request and fee counts as ``{"value": n}``) go to ``sink`` in batches of 5,000.

Output depends only on ``(users, seed, today)`` (and the installed Faker's name lists): the same
inputs give byte-identical files. People are made in independent chunks of 5,000 records, each
with its own random stream and its own slice of every identifier space, so memory stays flat at a
million users.

Ground truth
------------
``ground_truth.csv`` has the columns ``rule_id,primary_id,other_primary_id,cluster_id,detail``,
with the rule ids of :mod:`almatools.quality.catalog` plus ``NOT_DUPLICATE`` (hard negatives).
One row per record and rule, except the pair rules: ``DUPLICATE`` and ``NOT_DUPLICATE`` have one
row per unordered pair of a cluster (same ``cluster_id``) and ``ID_COLLISION`` one row per pair.
``SIS_LOCAL_OTHER_ID`` names the SIS identifier in ``other_primary_id`` (detail ``in_alma`` when
Alma already has that SIS record, which then also makes a ``DUPLICATE`` pair, or ``not_in_alma``
when the next load will create it). A record has several rows only where that is natural (an old
SIS record of an alum is ``DUPLICATE`` and ``STALE_SIS_MISSING``). Every record without a row is
clean under these readings of the rules (``today`` is the generation date, retention 365 days):

* ``STALE_SIS_MISSING``: EXTERNAL with a SIS profile, primary id not in the extract;
  ``SIS_LOCAL_SAME_ID``: INTERNAL, primary id in the extract; ``LOCAL_IN_SIS_GROUP``: INTERNAL, in a
  ``sis_loaded`` group, primary id not in the extract (ids compared ignoring case);
* ``EXPIRED_ACTIVE``: ACTIVE and expiry < today; ``NO_PURGE_DATE``: no purge date (this is not also
  a ``MISSING_FIELD``); ``PURGE_PASSED``: purge < today (no record has purge == today);
  ``PURGE_TOO_SOON``: today <= purge < expiry + retention;
* ``MISSING_FIELD`` (detail = the field): empty first_name, last_name or expiry_date; no email at
  all is ``email_address``; an email without a type is ``email_type``;
* ``SIS_PROFILE_MISSING``: EXTERNAL with ``external_id`` ""; ``SIS_PROFILE_UNKNOWN``: EXTERNAL with
  another code (these people are in the extract, so they are not stale);
* ``ID_COLLISION``: the primary id or an identifier of one record equals one of another record once
  case and all whitespace are ignored; ``MULTI_PREFERRED_EMAIL``: more than one preferred email;
  ``BAD_EMAIL``: an address not of the form ``local@domain.tld`` (one ``@``, no spaces, a dotted
  domain with a 2+ letter TLD); ``BAD_ID_FORMAT``: the primary id does not match the group's
  ``id_pattern`` as written (no case folding).

Clean records never share an identifier, email or phone with another person, never share a last
name and birth date with another person of their chunk, and have exactly one preferred email.

The people and their records
----------------------------
Names come from Faker's lists of a US university's origins (:data:`.names.LOCALES`): English, Spanish
(a quarter with two surnames, García López), Chinese, Vietnamese and Korean (romanised), German,
French, Italian, Dutch (particles: van der Berg), Polish, Norwegian, Danish and Turkish, so the
letters that do not decompose (Đ, ø, æ, Ł, ß, ı) occur; 4% of US surnames are hyphenated. Alma's
``pref_first_name`` is set for 45% of East-Asian people (an English name: "Jack" for Hương) and 6% of
others (a nickname or the middle name), on SIS records and half of the desk records. SIS records
nearly always have the birth date; desk (INTERNAL) records lack it 40% of the time. A record may
have several emails (school and personal), phones (``mobile``, and the household's ``home`` line,
whose area codes no mobile uses) and addresses (home, and a term or office address).

Duplicates (``DUPLICATE``, detail ``scenario;kind``, kinds joined by ``+`` on a third record) are
the records of about 2% of people: ``local_twice``, ``local_twice_id_format``, ``local_three``,
``alum_old_sis`` (an alum's old SIS record and a desk record), ``sis_and_local``, ``readmitted`` (two
SIS records under two university ids, 40% without a shared email). The kinds (:data:`.variations.KINDS`):
``exact``, ``typo_first``, ``typo_last``, ``nickname``, ``swapped`` (first and last name), ``middle``
(present on one record only), ``middle_in_first`` ("Mary Ann"), ``initial`` ("J."), ``pref_name``
(the preferred name typed as the first name), ``ascii`` (Đặng/Dang, Søren/Soeren), ``double_surname``
(García López / Garcia-Lopez / Lopez), ``particle`` (van der Berg / Vanderberg / Berg), ``suffix``
(Smith Jr / Smith), ``married`` (a new surname; the email still names the old one),
``married_new_email`` (a new surname and email; the mobile kept), ``email_domain`` (one user name at
two providers), ``dob_swap`` (day and month), ``dob_typo`` (one digit), ``no_birth`` (a desk record
without a birth date sharing the mobile), and three with no birth date on the desk record that
share one field only: ``other_email_only`` (a non-preferred email), ``other_phone_only`` (the
non-preferred home phone) and ``address_only``. Every pair shares an exact field besides the name
(an email, a phone, the birth date, an address or an identifier).

Look-alikes (``NOT_DUPLICATE``, detail the pattern), all with both birth dates so the records can
tell the people apart: ``same_name`` (a common full name, John Smith or Fang Li, nothing else
shared), ``twins`` (surname, birth date, address and home phone; other first names),
``parent_child`` (one full name, 45-68 and 17-24 years old, one address, the home phone in half, Jr/Sr
on some), ``spouses`` (address and home phone, the surname in half), ``family_email`` (a parent and
a child who give one family address).

The package by concern
----------------------
:mod:`.names` (name, place and contact tables, Faker's pools), :mod:`.people` (groups and policy,
people, records, identifiers), :mod:`.chunk` (a chunk's random stream, people and clean records),
:mod:`.variations` (how the records of one person differ), :mod:`.duplicates`, :mod:`.lookalikes` and
:mod:`.problems` (the planted scenarios), :mod:`.plan` (how often each is planted; building the chunks),
:mod:`.records` (Alma's user JSON and the SIS's), :mod:`.write` (the files and the entry points).
"""

from almatools.sandbox.generator.names import NICKNAMES
from almatools.sandbox.generator.people import INSTITUTION_CODE, SIS_PROFILE
from almatools.sandbox.generator.plan import BATCH_SIZE, MAX_USERS
from almatools.sandbox.generator.write import (
    FILE_USERS,
    GROUND_TRUTH_COLUMNS,
    InstitutionInfo,
    generate_institution,
    iter_sandbox_users,
)

__all__ = [
    "BATCH_SIZE",
    "FILE_USERS",
    "GROUND_TRUTH_COLUMNS",
    "INSTITUTION_CODE",
    "MAX_USERS",
    "NICKNAMES",
    "SIS_PROFILE",
    "InstitutionInfo",
    "generate_institution",
    "iter_sandbox_users",
]
