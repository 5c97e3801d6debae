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
Names come from Faker's lists of a US university's origins (:data:`_LOCALES`): English, Spanish
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
SIS records under two university ids, 40% without a shared email). The kinds (:data:`_KINDS`):
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
"""

from __future__ import annotations

import csv
import json
import os
import random
import tempfile
import tomllib
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from functools import lru_cache
from itertools import accumulate
from importlib import resources
from pathlib import Path
from typing import Any

from almatools.models import format_alma_date, user_to_xml_bytes, write_users_xml
from almatools.quality.catalog import RULES

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

SIS_PROFILE = "SIS"
INSTITUTION_CODE = "01SANDBOX_INST"
INSTITUTION_NAME = "Sandbox University"
SCHOOL_DOMAIN = "sandboxu.edu"
BATCH_SIZE = 5_000
"""Records per chunk and per ``sink`` call."""
FILE_USERS = 20_000
"""Users per XML file in the zips (SIS scripts keep files to about this size)."""
MAX_USERS = 5_000_000
GROUND_TRUTH_COLUMNS = ("rule_id", "primary_id", "other_primary_id", "cluster_id", "detail")

NICKNAMES: dict[str, tuple[str, ...]] = {
    "William": ("Bill", "Will", "Billy"), "Robert": ("Bob", "Rob", "Bobby"),
    "James": ("Jim", "Jimmy", "Jamie"), "Michael": ("Mike", "Mikey"), "Richard": ("Rick", "Dick"),
    "Thomas": ("Tom", "Tommy"), "Joseph": ("Joe", "Joey"), "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",), "Anthony": ("Tony",), "Edward": ("Ed", "Eddie", "Ted"),
    "Benjamin": ("Ben",), "Nicholas": ("Nick",), "Jonathan": ("Jon",), "Andrew": ("Andy", "Drew"),
    "Charles": ("Charlie", "Chuck"), "Steven": ("Steve",), "Timothy": ("Tim",),
    "Alexander": ("Alex",), "Christopher": ("Chris",), "Elizabeth": ("Liz", "Beth", "Betty"),
    "Katherine": ("Kate", "Katie", "Kathy"), "Margaret": ("Peggy", "Maggie", "Meg"),
    "Jennifer": ("Jen", "Jenny"), "Patricia": ("Pat", "Patty", "Trish"), "Susan": ("Sue", "Susie"),
    "Deborah": ("Deb", "Debbie"), "Rebecca": ("Becky", "Becca"), "Victoria": ("Vicky", "Tori"),
    "Jessica": ("Jess",), "Samantha": ("Sam",), "Abigail": ("Abby",), "Alexandra": ("Alex", "Sasha"),
    "Christina": ("Chris", "Tina"), "Kimberly": ("Kim",),
}
_NICK_MALE = ("William", "Robert", "James", "Michael", "Richard", "Thomas", "Joseph", "Daniel",
              "Matthew", "Anthony", "Edward", "Benjamin", "Nicholas", "Jonathan", "Andrew", "Charles",
              "Steven", "Timothy", "Alexander", "Christopher")
_NICK_FEMALE = ("Elizabeth", "Katherine", "Margaret", "Jennifer", "Patricia", "Susan", "Deborah",
                "Rebecca", "Victoria", "Jessica", "Samantha", "Abigail", "Alexandra", "Christina",
                "Kimberly")

_SIS_GROUPS = ("UGRAD", "GRAD", "FACULTY", "STAFF")
_LOCAL_BORROWERS = ("ALUMNI", "COMMUNITY", "RECIPROCAL", "FRIENDS")
_GROUP_WEIGHTS = {"UGRAD": 55, "GRAD": 15, "FACULTY": 8, "STAFF": 9, "ALUMNI": 5, "COMMUNITY": 4,
                  "RECIPROCAL": 1.5, "FRIENDS": 1.5, "LIBSTAFF": 1}
_LOCAL_PREFIX = {"ALUMNI": "AL", "COMMUNITY": "CB", "RECIPROCAL": "RB", "FRIENDS": "FR"}
_AGES = {"UGRAD": (17, 24), "GRAD": (22, 40), "FACULTY": (28, 72), "STAFF": (20, 66),
         "ALUMNI": (22, 80), "COMMUNITY": (16, 85), "RECIPROCAL": (20, 70), "FRIENDS": (35, 90),
         "LIBSTAFF": (22, 66)}
# Origins of names (shares of people): a US university's mix, with the letters that do not decompose
# (Vietnamese Đ, Danish/Norwegian ø and æ, Polish Ł, German ß, Turkish ı) and surname particles (nl, es).
_LOCALES = (("en_US", 62), ("es_MX", 11), ("zh_CN", 5), ("vi_VN", 3), ("ko_KR", 2.5), ("de_DE", 3),
            ("fr_FR", 3), ("it_IT", 2), ("nl_NL", 2), ("pl_PL", 1.5), ("no_NO", 1), ("da_DK", 1.5),
            ("tr_TR", 1.5))
_LOCALE_CODES = tuple(code for code, _ in _LOCALES)
_LOCALE_CUM = tuple(accumulate(weight for _, weight in _LOCALES))  # choices() would sum them per call
_EAST_ASIAN = ("zh_CN", "vi_VN", "ko_KR")
# Korean names romanised as US registrars write them (Faker's ko_KR is Hangul): surnames by their
# approximate national shares (Kim about a fifth, Lee and Park next), given names hyphenated.
_KO_LAST = (("Kim", 21), ("Lee", 15), ("Park", 8), ("Choi", 5), ("Jung", 4), ("Kang", 2), ("Cho", 2),
            ("Yoon", 2), ("Jang", 2), ("Lim", 2), ("Han", 1), ("Oh", 1), ("Seo", 1), ("Shin", 1),
            ("Kwon", 1), ("Hwang", 1), ("Ahn", 1), ("Song", 1), ("Yoo", 1), ("Hong", 1))
# Given names are two syllables, so there are hundreds (a short list would make namesakes common).
_KO_SYLLABLES = {"MALE": (("Min", "Ji", "Hyun", "Jae", "Dong", "Seung", "Young", "Sung", "Jin", "Tae", "Joon",
                           "Sang", "Jong", "Kyung", "Do", "Chan"),
                          ("jun", "hoon", "woo", "won", "hyun", "ho", "min", "yang", "seok", "bin", "sik", "soo")),
                 "FEMALE": (("Seo", "Ji", "Eun", "Soo", "Ye", "Hye", "Mi", "Min", "Ha", "Yu", "Da", "So", "Hee",
                             "Su", "Na", "Yeon"),
                            ("yeon", "woo", "ji", "min", "jin", "kyung", "young", "seo", "eun", "na", "rin", "hee"))}
# Letters NFKD cannot take apart, as a clerk types them on a US keyboard (the first spelling is the
# usual one; German and Scandinavian clerks write the second).
_TYPED = {"Đ": ("D",), "đ": ("d",), "Ø": ("O", "Oe"), "ø": ("o", "oe"), "Æ": ("Ae",), "æ": ("ae",),
          "Ł": ("L",), "ł": ("l",), "ß": ("ss",), "ı": ("i",), "İ": ("I",), "Œ": ("Oe",), "œ": ("oe",),
          "Þ": ("Th",), "þ": ("th",), "ð": ("d",), "ä": ("a", "ae"), "ö": ("o", "oe"), "ü": ("u", "ue"),
          "Ä": ("A", "Ae"), "Ö": ("O", "Oe"), "Ü": ("U", "Ue"), "å": ("a", "aa"), "Å": ("A", "Aa")}
_PARTICLES = (("van der", "nl_NL"), ("van den", "nl_NL"), ("van", "nl_NL"), ("de", "nl_NL"),
              ("de la", "es_MX"), ("del", "es_MX"), ("de", "fr_FR"), ("von", "de_DE"), ("di", "it_IT"),
              ("da", "it_IT"))
_SUFFIXES = ("Jr", "Jr.", "Sr", "II", "III")
_HOME_AREA_CODES = ("203", "212", "240", "301", "412", "516", "570", "585", "607", "631", "717", "724",
                    "814", "845", "914", "315", "860", "443", "540", "703")
_LANG = {"en": "English", "es": "Spanish", "de": "German", "fr": "French", "it": "Italian"}
_FREEMAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com",
             "proton.me", "comcast.net")
_FREEMAIL_CUM = tuple(accumulate((40, 15, 15, 8, 8, 5, 4, 5)))
_AREA_CODES = ("201", "215", "267", "302", "347", "410", "484", "551", "609", "610", "646", "718",
               "732", "848", "856", "862", "908", "917", "973", "929")
_JOBS = {"FACULTY": ("Assistant Professor", "Associate Professor", "Professor", "Lecturer",
                     "Research Professor"),
         "STAFF": ("Administrative Assistant", "Program Coordinator", "IT Analyst", "Accountant",
                   "Facilities Technician", "Academic Advisor")}
_TITLES = {"": "", "Dr": "Dr.", "Prof": "Professor"}
_NOTES = ("Registered at the Main Library circulation desk; photo ID checked.",
          "Proof of local address seen (utility bill).", "Prefers contact by phone.",
          "Borrowing privileges renewed at the desk.", "Card replaced (lost).")
_PROFILE_OLD = ("OLD_SIS", "SIS2019", "BANNER")
_SEP = ("-", ".", "_", "/")
_NEIGHBOURS = {c: n for c, n in zip("abcdefghijklmnopqrstuvwxyz",
                                    ("sq", "vn", "xv", "sf", "wr", "dg", "fh", "gj", "uo", "hk", "jl",
                                     "ko", "nk", "bm", "ip", "ol", "wa", "et", "ad", "ry", "yi", "cb",
                                     "qe", "zc", "tu", "xa"))}

# How records of one person differ (weights; see Chunk.vary). The first seven are the classics.
_KINDS: tuple[tuple[str, float], ...] = (
    ("typo_first", 6), ("typo_last", 6), ("nickname", 7), ("married", 6), ("middle", 5), ("email_domain", 8),
    ("exact", 8), ("married_new_email", 4), ("swapped", 3), ("no_birth", 6), ("pref_name", 6), ("ascii", 5),
    ("double_surname", 5), ("particle", 3), ("suffix", 3), ("initial", 3), ("middle_in_first", 3),
    ("dob_swap", 3), ("dob_typo", 3), ("other_email_only", 2), ("other_phone_only", 2), ("address_only", 2))
_CLASSIC = tuple(k for k, _ in _KINDS[:7])
_NO_BIRTH = ("no_birth", "other_email_only", "other_phone_only", "address_only")
_DOB = ("dob_swap", "dob_typo")
_LIGHT = ("typo_first", "typo_last", "middle", "email_domain", "exact", "initial")
"""Kinds that combine with any other on a third record (they shape neither the person nor the contacts)."""

# Rate of each planted scenario per 1,000 records (at 5,000 records every rule gets 8+ cases). About 2%
# of people have a second account (real registries hold 2-4%), 0.4% a look-alike of another person.
_PLAN: tuple[tuple[str, float], ...] = (
    ("dup_local", 6.0), ("dup_local_id_format", 0.6), ("dup_alum_old_sis", 3.5),
    ("dup_sis_local", 4.0), ("dup_readmitted", 2.0), ("dup_local3", 1.0),
    ("neg_same_name", 1.2), ("neg_twins", 0.8), ("neg_parent_child", 0.6), ("neg_spouses", 0.8),
    ("neg_family_email", 0.6),
    ("sis_local_other_id", 1.6), ("sis_local_same_id", 2.4), ("stale", 5.0),
    ("expired_active", 3.0), ("no_purge", 2.4), ("purge_passed", 2.4), ("purge_too_soon", 2.4),
    ("missing_field", 3.0), ("profile_missing", 2.0), ("profile_unknown", 2.0),
    ("local_in_sis_group", 2.4), ("id_collision", 2.0), ("multi_preferred", 2.4),
    ("bad_email", 2.4), ("bad_id_format", 2.0), ("sis_new", 10.0),
)


@dataclass(frozen=True)
class InstitutionInfo:
    """What :func:`generate_institution` made.

    Attributes:
        users: Number of Alma user records.
        seed: The random seed.
        today: The reference date all dates are relative to.
        sis_profile: The SIS integration profile code (``external_id`` of SIS-managed records).
        counts: Records per user group (``UGRAD``…), ground-truth rows per rule id (``DUPLICATE``…,
            ``NOT_DUPLICATE``), and ``users``, ``sis_extract_users`` (people in the extract) and
            ``sis_new_users`` (people in the extract that Alma does not have yet).
    """

    users: int
    seed: int
    today: date
    sis_profile: str
    counts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """The info as a JSON-ready dict (``today`` as ISO date)."""
        d = asdict(self)
        d["today"] = self.today.isoformat()
        return d


# ---------------------------------------------------------------------------------------------
# Policy and name pools


@dataclass(frozen=True)
class _Group:
    code: str
    description: str
    sis_loaded: bool
    expiry_days: int
    patron_type: str


@lru_cache(maxsize=1)
def _policy() -> tuple[dict[str, _Group], int]:
    text = resources.files("almatools").joinpath("policies/default.toml").read_text("utf-8")
    pol = tomllib.loads(text)
    groups = {code: _Group(code, g["description"], bool(g["sis_loaded"]), int(g["default_expiry_days"]),
                           g["patron_type"]) for code, g in pol["groups"].items()}
    return groups, int(pol["institution"]["retention_days"])


@dataclass(frozen=True)
class _Pools:
    first: dict[tuple[str, str], tuple[str, ...]]  # (locale, FEMALE|MALE) -> names, by frequency
    last: dict[str, tuple[str, ...]]
    streets: tuple[str, ...]
    places: tuple[tuple[str, str, str], ...]  # city, state, postal code
    common_first: dict[tuple[str, str], tuple[str, ...]]  # the commonest names, for namesakes
    common_last: dict[str, tuple[str, ...]]


@lru_cache(maxsize=1)
def _pools() -> _Pools:
    """Name and address pools, drawn once from Faker with a fixed seed (draws keep the frequencies)."""
    from faker import Faker

    first: dict[tuple[str, str], tuple[str, ...]] = {}
    last: dict[str, tuple[str, ...]] = {}
    for loc, _w in _LOCALES:
        if loc == "ko_KR":
            last[loc] = tuple(name for name, share in _KO_LAST for _ in range(share))
            for gender, (heads, tails) in _KO_SYLLABLES.items():
                first[(loc, gender)] = tuple(f"{h}-{t}" for h in heads for t in tails if h.lower() != t)
            continue
        fk = Faker(loc)
        fk.seed_instance(20240501)
        n = 1500 if loc == "en_US" else 400
        if loc == "zh_CN":  # romanised: the kit keeps to Latin script
            first[(loc, "FEMALE")] = first[(loc, "MALE")] = tuple(fk.first_romanized_name() for _ in range(n))
            last[loc] = tuple(fk.last_romanized_name() for _ in range(n))
            continue
        first[(loc, "FEMALE")] = tuple(fk.first_name_female() for _ in range(n))
        first[(loc, "MALE")] = tuple(fk.first_name_male() for _ in range(n))
        last[loc] = tuple(fk.last_name() for _ in range(n))
    fk = Faker("en_US")
    fk.seed_instance(20240502)
    streets = tuple(fk.street_name() for _ in range(600))
    places = tuple((fk.city(), fk.state_abbr(include_territories=False), fk.zipcode()) for _ in range(300))
    common_first = {key: tuple(n for n, _ in Counter(names).most_common(12)) for key, names in first.items()}
    common_last = {loc: tuple(n for n, _ in Counter(names).most_common(8)) for loc, names in last.items()}
    return _Pools(first, last, streets, places, common_first, common_last)


@lru_cache(maxsize=65536)
def _typed(s: str, variant: int = 0) -> str:
    """The name as typed on a US keyboard: accents dropped, Đ ø æ Ł ß ı spelled out.

    ``variant`` 1 writes the German and Scandinavian spellings (ø -> oe, ü -> ue, å -> aa).
    """
    out = []
    for ch in s:
        spellings = _TYPED.get(ch)
        if spellings is None:
            out.append(ch)
        else:
            out.append(spellings[min(variant, len(spellings) - 1)])
    return "".join(c for c in unicodedata.normalize("NFKD", "".join(out)) if not unicodedata.combining(c))


@lru_cache(maxsize=65536)
def _ascii(s: str) -> str:
    """Lower-case ASCII letters and digits only, for emails and logins (Đặng -> dang, not ang)."""
    return "".join(c for c in _typed(s).lower() if c.isascii() and c.isalnum())


def _perm(x: int, space: int, key: int) -> int:
    """A keyed bijection of ``range(space)``: ids look random but never repeat.

    A four-round Feistel network on the smallest even number of bits that holds ``space``, with
    cycle walking to stay inside it.
    """
    bits = (space - 1).bit_length()
    half = (bits + 1) // 2
    mask = (1 << half) - 1
    while True:
        left, right = x >> half, x & mask
        for rnd in range(4):
            f = ((right ^ (key + rnd * 0x9E3779B9)) * 0x45D9F3B) & 0xFFFFFFFF
            left, right = right, left ^ ((f ^ (f >> 15)) & mask)
        x = (left << half) | right
        if x < space:
            return x


def _luhn(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _c(value: Any, desc: Any) -> dict[str, Any]:
    return {"value": value, "desc": desc}


def _d(d: date | None) -> str | None:
    return format_alma_date(d)


# ---------------------------------------------------------------------------------------------
# People and records


@dataclass
class _Person:
    p: int  # global person slot: drives the person's unique email, phone and NetID numbers
    first: str
    middle: str
    last: str
    gender: str  # FEMALE | MALE
    show_gender: bool
    birth: date | None
    locale: str
    address: dict[str, Any]
    email_style: int
    email_domain: str
    pref_first: str = ""  # Alma's pref_first_name: "Jack" for Hương, "Bill" for William
    home_p: int = -1  # the household's slot for the home phone (-1: the person's own)


@dataclass
class _Rec:
    person: _Person
    group: str
    primary_id: str
    external: bool
    first: str
    middle: str
    last: str
    birth: date | None
    external_id: str = ""
    in_sis: bool = False  # the SIS extract carries this very record (same primary id)
    status: str = "ACTIVE"
    expiry: date | None = None
    purge: date | None = None
    status_date: date | None = None
    last_activity: date | None = None
    record_type: str = "PUBLIC"
    title: str = ""
    job: str = ""
    campus: str | None = None
    language: str = "en"
    force_password_change: str = ""
    pref_first: str = ""
    emails: list[list[Any]] = field(default_factory=list)  # [address, [types], preferred]
    phones: list[list[Any]] = field(default_factory=list)  # [number, [types], preferred]
    addresses: list[dict[str, Any]] = field(default_factory=list)
    identifiers: list[list[str]] = field(default_factory=list)  # [id_type, value, status]
    notes: list[dict[str, Any]] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)  # operator role codes besides Patron
    counts: tuple[int, int, float] = (0, 0, 0.0)  # requests, loans, fees


_ID_TYPES = {"UNIV_ID": "University ID", "BARCODE": "Barcode", "NET_ID": "NetID"}
_TYPE_DESC = {"home": "Home", "work": "Work", "school": "School", "personal": "Personal",
              "mobile": "Mobile", "office": "Office", "alternative": "Alternative"}
_ROLE_DESC = {"200": "Patron", "21": "Circulation Desk Operator", "51": "Requests Operator"}
_SIS_KEYS = ("record_type", "primary_id", "first_name", "middle_name", "last_name", "user_title",
             "job_description", "gender", "user_group", "campus_code", "preferred_language",
             "birth_date", "expiry_date", "purge_date", "account_type", "external_id", "status",
             "contact_info", "user_identifier", "user_statistic")


class _Ids:
    """Identifier allocation: each chunk owns a disjoint slice of every id space."""

    _SLOTS = {"person": 8_000, "univ": 20_000, "barcode": 20_000, "legacy": 2_000, "libstaff": 1_000}

    def __init__(self, chunk: int, n_chunks: int, seed: int) -> None:
        self.k, self.seed = chunk, seed
        # Numbers derived from the person slot (emails, NetIDs) get as many digits as needed.
        self.person_space = 10 ** max(4, len(str(n_chunks * self._SLOTS["person"] - 1)))
        self.local_slots = min(5_000, 10**6 // max(n_chunks, 1))
        self.used: Counter[str] = Counter()

    def _next(self, space: str, slots: int) -> int:
        i = self.used[space]
        if i >= slots:
            raise RuntimeError(f"sandbox generator: id space {space!r} exhausted in chunk {self.k}")
        self.used[space] += 1
        return self.k * slots + i

    def person(self) -> int:
        return self._next("person", self._SLOTS["person"])

    def univ(self) -> str:
        return f"{_perm(self._next('univ', self._SLOTS['univ']), 10**9, self.key(1)):09d}"

    def barcode(self) -> str:
        seq = f"{_perm(self._next('barcode', self._SLOTS['barcode']), 10**8, self.key(2)):08d}"
        return "29417" + seq + _luhn("29417" + seq)

    def legacy_barcode(self) -> str:
        return f"L{_perm(self._next('legacy', self._SLOTS['legacy']), 10**7, self.key(3)):07d}"

    def local(self, prefix: str) -> str:
        x = self._next("local:" + prefix, self.local_slots)
        return f"{prefix}{_perm(x, 10**6, self.key(4 + sum(map(ord, prefix)))):06d}"

    def libstaff(self) -> int:
        return self._next("libstaff", self._SLOTS["libstaff"]) + 1

    def key(self, space: int) -> int:
        """The permutation key of an id space: differs by seed, so seeds give different ids."""
        return (self.seed * 1_000_003 + space * 7_919) & 0xFFFFFFFF


class _Chunk:
    """One chunk of the institution: its Alma records, SIS extract and ground-truth rows."""

    def __init__(self, k: int, size: int, seed: int, today: date, n_chunks: int) -> None:
        self.k, self.size, self.today = k, size, today
        self.rng = random.Random(f"almatools-sandbox:{seed}:{k}")
        self.ids = _Ids(k, n_chunks, seed)
        self.groups, self.retention = _policy()
        self.pools = _pools()
        self.alma: list[_Rec] = []
        self.sis_only: list[_Rec] = []  # people in the extract under an id Alma does not have
        self.rows: list[tuple[str, str, str, str, str]] = []
        self.taken: set[tuple[str, int]] = set()  # (last name, birth) of the chunk's people
        self.n_clusters = Counter[str]()

    # -- people -------------------------------------------------------------------------------

    def person(self, group: str, *, gender: str | None = None, first: str | None = None,
               last: str | None = None, middle: str | None = None, birth: date | None | str = "auto",
               locale: str | None = None, address: dict[str, Any] | None = None,
               register: bool = True, pref: str | None = None) -> _Person:
        rng, pools = self.rng, self.pools
        loc = locale or rng.choices(_LOCALE_CODES, cum_weights=_LOCALE_CUM)[0]
        gender = gender or rng.choice(("FEMALE", "MALE"))
        first = first or rng.choice(pools.first[(loc, gender)])
        if last is None:
            last = rng.choice(pools.last[loc])
            roll = rng.random()
            if roll < 0.25 and loc == "es_MX" and " " not in last:  # paternal and maternal surnames
                second = rng.choice(pools.last[loc])
                last = f"{last} {second}" if second != last and " " not in second else last
            elif roll < 0.04 and loc == "en_US":  # a hyphenated surname
                second = rng.choice(pools.last[loc])
                last = f"{last}-{second}" if second != last else last
        if middle is None:
            middle = rng.choice(pools.first[(loc, gender)]) if rng.random() < 0.35 else ""
        if middle == first:
            middle = ""
        if pref is None:  # Alma's preferred first name: an English name, a nickname or the middle name
            pref = ""
            if loc in _EAST_ASIAN:
                if rng.random() < 0.45:
                    pref = rng.choice(pools.first[("en_US", gender)])
            elif rng.random() < 0.06:
                pref = rng.choice(NICKNAMES[first]) if first in NICKNAMES else middle
        if birth == "auto":  # the SIS nearly always sends it; a desk form often leaves it out
            birth = self.birth(group, last) if rng.random() < (0.98 if self.groups[group].sis_loaded else 0.6) else None
        elif birth == "need":
            birth = self.birth(group, last)
        if register and isinstance(birth, date):
            self.taken.add((last.casefold(), birth.toordinal()))
        assert birth is None or isinstance(birth, date)
        return _Person(self.ids.person(), first, middle, last, gender, rng.random() < 0.6, birth, loc,
                       address or self.address(), rng.randrange(5),
                       rng.choices(_FREEMAIL, cum_weights=_FREEMAIL_CUM)[0], pref if pref != first else "")

    def birth(self, group: str, last: str, ages: tuple[int, int] | None = None) -> date:
        lo, hi = ages or _AGES[group]
        for _ in range(50):
            b = self.today - timedelta(days=self.rng.randint(lo * 365, hi * 365 + 364))
            if (last.casefold(), b.toordinal()) not in self.taken:
                return b
        raise RuntimeError("sandbox generator: could not find a free birth date")

    def address(self) -> dict[str, Any]:
        rng = self.rng
        city, state, postal = rng.choice(self.pools.places)
        line2 = f"Apt {rng.randint(1, 30)}{rng.choice('ABCD')}" if rng.random() < 0.2 else None
        return {"line1": f"{rng.randint(1, 9999)} {rng.choice(self.pools.streets)}", "line2": line2,
                "city": city, "state_province": state, "postal_code": postal}

    def email_local(self, person: _Person, last: str | None = None) -> str:
        f, l = _ascii(person.first) or "x", _ascii(last or person.last) or "x"
        n = _perm(person.p, self.ids.person_space, self.ids.key(10))
        return (f"{f}.{l}{n}", f"{f}{l}{n}", f"{f[0]}{l}{n}", f"{f}_{l}{n}", f"{l}.{f}{n}")[person.email_style]

    def personal_email(self, person: _Person, domain: str | None = None, last: str | None = None) -> str:
        return f"{self.email_local(person, last)}@{domain or person.email_domain}"

    def other_email(self, person: _Person, k: int = 1) -> str:
        """The person's ``k``-th other personal address (1..7): another user name at another provider,
        so it differs from :meth:`personal_email` and from every other ``k``."""
        style = (person.email_style + k) % 5
        domain = _FREEMAIL[(_FREEMAIL.index(person.email_domain) + k) % len(_FREEMAIL)]
        return f"{self.email_local(replace(person, email_style=style))}@{domain}"

    def netid(self, person: _Person) -> str:
        ini = [(_ascii(s) or "x")[0] for s in (person.first, person.middle or "x", person.last)]
        return "".join(ini) + str(_perm(person.p, self.ids.person_space, self.ids.key(11)))

    def school_email(self, person: _Person) -> str:
        return f"{self.netid(person)}@{SCHOOL_DOMAIN}"

    def phone(self, person: _Person, style: int = 0, *, home: bool = False) -> str:
        """The person's mobile, or (``home``) the household's landline: area codes of their own, so
        a home number never equals anyone's mobile."""
        slot = person.home_p if home and person.home_p >= 0 else person.p
        v = _perm(slot, 8 * 10**6, self.ids.key(13 if home else 12))
        area = (_HOME_AREA_CODES if home else _AREA_CODES)[slot % len(_AREA_CODES)]
        exch, line = 200 + v // 10_000, v % 10_000
        return (f"({area}) {exch}-{line:04d}", f"{area}-{exch}-{line:04d}", f"{area}{exch}{line:04d}",
                f"+1 {area} {exch} {line:04d}")[style]

    # -- records ------------------------------------------------------------------------------

    def _base(self, person: _Person, group: str, pid: str, external: bool) -> _Rec:
        rng, today = self.rng, self.today
        r = _Rec(person, group, pid, external, person.first, person.middle, person.last, person.birth)
        r.status_date = today - timedelta(days=rng.randint(0, 400))
        if rng.random() < 0.6:
            r.last_activity = today - timedelta(days=rng.randint(0, 365))
        lang = {"es_MX": "es", "de_DE": "de", "fr_FR": "fr", "it_IT": "it"}.get(person.locale)
        r.language = lang if lang and rng.random() < 0.3 else "en"
        loans = 0 if rng.random() < 0.6 else rng.randint(1, 12)
        requests = 0 if rng.random() < 0.85 else rng.randint(1, 4)
        fees = 0.0 if rng.random() < 0.9 else round(rng.uniform(0.5, 60.0), 2)
        r.counts = (requests, loans, fees)
        return r

    def _dates(self, r: _Rec, *, jitter: int) -> None:
        days = self.groups[r.group].expiry_days
        r.expiry = self.today + timedelta(days=days - self.rng.randint(0, jitter))
        r.purge = r.expiry + timedelta(days=self.retention)

    def sis_rec(self, person: _Person, group: str, *, in_sis: bool = True) -> _Rec:
        """A clean SIS-managed record (EXTERNAL, "SIS")."""
        rng = self.rng
        pid = self.ids.univ()
        r = self._base(person, group, pid, True)
        r.external_id, r.in_sis = SIS_PROFILE, in_sis
        self._dates(r, jitter=60)  # set by the SIS at its last update
        r.identifiers = [["UNIV_ID", pid, "ACTIVE"], ["BARCODE", self.ids.barcode(), "ACTIVE"],
                         ["NET_ID", self.netid(person), "ACTIVE"]]
        r.pref_first = person.pref_first
        r.emails = [[self.school_email(person), ["school"], True]]
        if rng.random() < 0.45:
            r.emails.append([self.personal_email(person), ["personal"], False])
        if rng.random() < 0.75:
            r.phones = [[self.phone(person), ["mobile"], True]]
        if rng.random() < 0.3:  # the family's landline
            r.phones.append([self.phone(person, home=True), ["home"], not r.phones])
        if rng.random() < 0.6:
            r.addresses = [dict(person.address, types=["home"])]
        if rng.random() < 0.25:  # a term-time or office address besides the permanent one
            r.addresses.append(dict(self.address(), types=["work" if group in ("FACULTY", "STAFF") else "school"]))
        if group in ("FACULTY", "STAFF"):
            r.job = rng.choice(_JOBS[group])
            if group == "FACULTY" and rng.random() < 0.5:
                r.title = rng.choice(("Dr", "Prof"))
        r.campus = "MAIN" if rng.random() < 0.3 else None
        if group == "STAFF" and rng.random() < 0.05:  # library employees: one account, two roles
            r.record_type, r.roles = "STAFF", ["21"]
        return r

    def local_rec(self, person: _Person, group: str, *, pid: str | None = None,
                  active: bool | None = None) -> _Rec:
        """A clean locally managed record (INTERNAL)."""
        rng, today = self.rng, self.today
        if pid is None:
            pid = self.login(person) if group == "LIBSTAFF" else self.ids.local(_LOCAL_PREFIX[group])
        r = self._base(person, group, pid, False)
        days = self.groups[group].expiry_days
        if active is None:
            active = group == "LIBSTAFF" or rng.random() < 0.92
        if active:
            r.expiry = today + timedelta(days=rng.randint(1, days))
        else:  # expired and deactivated within the year: still inside retention
            r.expiry = today - timedelta(days=rng.randint(1, 300))
            r.status, r.counts = "INACTIVE", (0, 0, r.counts[2])
            r.status_date = r.expiry + timedelta(days=rng.randint(0, today.toordinal() - r.expiry.toordinal()))
        r.purge = r.expiry + timedelta(days=self.retention)
        legacy = group in ("ALUMNI", "FRIENDS") and rng.random() < 0.2
        r.identifiers = [["BARCODE", self.ids.legacy_barcode() if legacy else self.ids.barcode(), "ACTIVE"]]
        if rng.random() < 0.1:
            r.identifiers.append(["BARCODE", self.ids.barcode(), "INACTIVE"])
        if group == "LIBSTAFF":
            r.emails = [[f"{pid}@library.{SCHOOL_DOMAIN}", ["work"], True]]
            r.record_type = "STAFF"
            r.roles = ["21", "51"] if rng.random() < 0.3 else ["21"]
        else:
            r.emails = [[self.personal_email(person), ["personal"], True]]
            if rng.random() < 0.1:
                r.emails.append([self.other_email(person), ["personal"], False])
            r.force_password_change = "TRUE" if rng.random() < 0.5 else ""
        if rng.random() < 0.5:
            r.pref_first = person.pref_first
        if rng.random() < 0.8:
            home = rng.random() < 0.4
            r.phones = [[self.phone(person, rng.randrange(2), home=home), ["home" if home else "mobile"], True]]
            if rng.random() < 0.15:
                r.phones.append([self.phone(person, home=not home), ["mobile" if home else "home"], False])
        if rng.random() < 0.85:
            r.addresses = [dict(person.address, types=["home"])]
        if rng.random() < 0.25:
            stamp = today - timedelta(days=rng.randint(0, 700))
            r.notes = [{"type": rng.choice(("CIRCULATION", "LIBRARY")), "text": rng.choice(_NOTES),
                        "date": f"{stamp.isoformat()}T{rng.randint(8, 19):02d}:{rng.randint(0, 59):02d}:"
                                f"{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"}]
        if rng.random() < 0.03:
            r.blocks = [{"date": today - timedelta(days=rng.randint(1, 90))}]
        return r

    def login(self, person: _Person) -> str:
        letters = (_ascii(person.first)[:1] + _ascii(person.last))[:8]
        if len(letters) < 4:  # keep 4+ letters: NetIDs have exactly three
            letters = (letters + _ascii(person.first) + "xxxx")[:4]
        return f"{letters}{self.ids.libstaff()}"

    def clean(self, group: str, person: _Person | None = None, **kw: Any) -> _Rec:
        person = person or self.person(group)
        if self.groups[group].sis_loaded:
            return self.sis_rec(person, group, **kw)
        return self.local_rec(person, group, **kw)

    def add(self, *recs: _Rec) -> None:
        self.alma.extend(recs)

    def row(self, rule: str, pid: str, other: str = "", cluster: str = "", detail: str = "") -> None:
        self.rows.append((rule, pid, other, cluster, detail))

    def cluster(self, kind: str) -> str:
        self.n_clusters[kind] += 1
        return f"{kind}{self.k + 1:04d}-{self.n_clusters[kind]:03d}"

    # -- variations for records of one person ----------------------------------------------

    def typo(self, name: str) -> str:
        """One edit (substitute a neighbouring key, drop, double or swap a letter)."""
        rng = self.rng
        for _ in range(20):
            pos = [i for i, ch in enumerate(name) if ch.isalpha() and ch.isascii()]
            if len(pos) < 3:
                break
            i = rng.choice(pos[1:])  # keep the initial
            ch = name[i]
            op = rng.randrange(4)
            if op == 0 and ch.lower() in _NEIGHBOURS:
                new = rng.choice(_NEIGHBOURS[ch.lower()])
                out = name[:i] + (new.upper() if ch.isupper() else new) + name[i + 1:]
            elif op == 1 and len(pos) > 3:
                out = name[:i] + name[i + 1:]
            elif op == 2:
                out = name[:i] + ch + name[i:]
            elif op == 3 and i + 1 < len(name) and name[i + 1].isalpha() and name[i + 1] != ch:
                out = name[:i] + name[i + 1] + ch + name[i + 2:]
            else:
                continue
            if out.casefold() != name.casefold():
                return out
        return name + ("e" if not name.endswith("e") else "a")

    def vary(self, base: _Rec, r: _Rec, kind: str) -> None:
        """Make ``r`` (another record of ``base``'s person) differ from ``base`` in one way.

        Every pair keeps some evidence besides the name, as real duplicates do: the birth date, or
        (where the birth date differs or is missing) a shared email, phone or address.
        """
        rng, p = self.rng, base.person
        r.first, r.middle, r.last, r.birth = base.first, base.middle, base.last, base.birth
        reroll = True
        if kind == "typo_first":
            r.first = self.typo(base.first)
        elif kind == "typo_last":
            r.last = self.typo(base.last)
        elif kind == "nickname":
            r.first = rng.choice(NICKNAMES[base.first])
        elif kind in ("married", "married_new_email"):
            while True:
                new = rng.choice(self.pools.last[p.locale])
                key = (new.casefold(), p.birth.toordinal() if p.birth else 0)
                if new.casefold() != base.last.casefold() and key not in self.taken:
                    break
            self.taken.add(key)
            r.last, reroll = new, False
            if kind == "married":  # the personal email still names the maiden surname
                old = self.personal_email(p)
                if not any(e[0] == old for e in base.emails):
                    base.emails.append([old, ["personal"], False])
                r.emails = [[old, ["personal"], True]]
            else:  # a new email under the new surname; the mobile kept
                r.emails = [[self.personal_email(p, last=new), ["personal"], True]]
                r.phones = [[self.phone(p, 2), ["mobile"], True]]
                self.ensure_mobile(base)
        elif kind == "swapped":
            r.first, r.last = base.last, base.first
        elif kind == "middle":
            if base.middle:
                r.middle = ""
            else:
                r.middle = rng.choice(self.pools.first[(p.locale, p.gender)])
        elif kind == "email_domain":
            if not any(e[0] == self.personal_email(p) for e in base.emails):
                base.emails.append([self.personal_email(p), ["personal"], False])
            other = rng.choice([d for d in _FREEMAIL if d != p.email_domain])
            if r.external:
                r.emails.append([self.personal_email(p, other), ["personal"], False])
            else:
                r.emails = [[self.personal_email(p, other), ["personal"], True]]
            reroll = False
        elif kind == "no_birth":  # a desk record without a birth date; the mobile shared
            r.birth, reroll = None, False
            r.phones = [[self.phone(p, 3), ["mobile"], True]]
            self.ensure_mobile(base)
        elif kind == "pref_name":  # the preferred name typed as the first name at the desk
            base.pref_first, r.first, r.pref_first = p.pref_first, p.pref_first, ""
        elif kind == "ascii":  # Đặng -> Dang, Søren -> Soren or Soeren, Łukasz -> Lukasz, Strauß -> Strauss
            variant = 1 if p.locale in ("de_DE", "no_NO", "da_DK") and rng.random() < 0.5 else 0
            r.first, r.middle, r.last = (_typed(x, variant) for x in (base.first, base.middle, base.last))
        elif kind == "double_surname":  # García López -> Garcia-Lopez, Garcia or Lopez
            parts = base.last.replace("-", " ").split()
            joined = " ".join(parts) if "-" in base.last else "-".join(parts)
            r.last = rng.choice((_typed(joined), joined, parts[0], parts[-1]))
        elif kind == "particle":  # van der Berg -> Van Der Berg, Vanderberg or Berg
            *particle, core = base.last.split()
            r.last = rng.choice((" ".join(w.title() for w in base.last.split()),
                                 ("".join(particle) + core).title(), core))
        elif kind == "suffix":  # "Smith Jr" on one record, the suffix left off on the other
            r.last = base.last.rsplit(" ", 1)[0]
        elif kind == "initial":  # J. Smith
            r.first = base.first[0] + rng.choice((".", ""))
        elif kind == "middle_in_first":  # "Mary Ann", no middle name
            r.first, r.middle = f"{base.first} {base.middle}", ""
        elif kind in ("dob_swap", "dob_typo"):
            assert base.birth is not None
            r.birth = self.swapped_date(base.birth) if kind == "dob_swap" else self.typo_date(base.birth)
            self.taken.add((r.last.casefold(), r.birth.toordinal()))
            self.share_email(base, r)
            reroll = False
        elif kind in ("other_email_only", "other_phone_only", "address_only"):
            # The same name, no birth date on the desk record, and just one shared field.
            r.birth, reroll = None, False
            r.emails = [[self.other_email(p, 2), ["personal"], True]]
            r.phones, r.addresses = [], [dict(self.address(), types=["home"])]
            if kind == "other_email_only":
                shared = self.other_email(p, 1)
                base.emails = [e for e in base.emails if e[0] != shared] + [[shared, ["personal"], False]]
                r.emails.append([shared, ["personal"], False])
            elif kind == "other_phone_only":
                self.ensure_mobile(base)
                home = self.phone(p, home=True)
                base.phones = [ph for ph in base.phones if ph[0] != home] + [[home, ["home"], False]]
                r.phones = [[self.phone(p, 1, home=True), ["home"], True]]
            else:
                if not any(a["line1"] == p.address["line1"] for a in base.addresses):
                    base.addresses.insert(0, dict(p.address, types=["home"]))
                r.addresses = [dict(p.address, types=["home"])]
        elif kind != "exact":
            raise ValueError(kind)
        if reroll and not r.external and r.group != "LIBSTAFF":
            # The same email (as registered), or another address and perhaps the same phone.
            roll = rng.random()
            if roll >= 0.4:
                style = (p.email_style + 1 + rng.randrange(4)) % 5
                local = self.email_local(replace(p, email_style=style))
                r.emails = [[f"{local}@{rng.choice(_FREEMAIL)}", ["personal"], True]]
                r.phones = [[self.phone(p, rng.randrange(4)), ["mobile"], True]] if roll < 0.7 else []

    def ensure_mobile(self, r: _Rec) -> None:
        """Give ``r`` its person's mobile as the preferred phone (keeping its other phones)."""
        mobile = self.phone(r.person)
        rest = [[n, t, False] for n, t, _ in r.phones if n != mobile]
        r.phones = [[mobile, ["mobile"], True]] + rest

    def share_email(self, base: _Rec, r: _Rec) -> None:
        """Both records carry the person's personal email (preferred on a desk record)."""
        email = self.personal_email(base.person)
        for rec in (base, r):
            if not any(e[0] == email for e in rec.emails):
                if rec.external:
                    rec.emails.append([email, ["personal"], False])
                else:
                    rec.emails = [[email, ["personal"], True]] + [[a, t, False] for a, t, _ in rec.emails]

    @staticmethod
    def swapped_date(d: date) -> date:
        return date(d.year, d.day, d.month)

    def typo_date(self, d: date) -> date:
        """The date with one digit of ``YYYY-MM-DD`` mistyped (still a valid date, not in the future)."""
        text = d.strftime("%Y%m%d")
        options = []
        for i in range(2, 8):  # the century is never mistyped
            for digit in "0123456789":
                if digit == text[i]:
                    continue
                t = text[:i] + digit + text[i + 1:]
                try:
                    new = date(int(t[:4]), int(t[4:6]), int(t[6:]))
                except ValueError:
                    continue
                if new < self.today and not (d.day <= 12 and new == self.swapped_date(d)):
                    options.append(new)
        return self.rng.choice(options)

    def dup_person(self, group: str, kinds: list[str], **kw: Any) -> _Person:
        """A person fit for the given variations (nicknames need a nickname-able first name...)."""
        rng, pools = self.rng, self.pools
        gender = rng.choice(("FEMALE", "MALE"))
        first = last = middle = pref = None
        if "married" in kinds or "married_new_email" in kinds:
            gender = "FEMALE"
        if "suffix" in kinds:
            gender = "MALE"
        if "nickname" in kinds:
            first = rng.choice(_NICK_FEMALE if gender == "FEMALE" else _NICK_MALE)
            kw.setdefault("locale", "en_US")
        if "pref_name" in kinds and first is None:
            if rng.random() < 0.7:  # an English name for an East-Asian given name
                kw.setdefault("locale", rng.choice(_EAST_ASIAN))
                pref = rng.choice(pools.first[("en_US", gender)])
            else:  # a nickname
                first = rng.choice(_NICK_FEMALE if gender == "FEMALE" else _NICK_MALE)
                kw.setdefault("locale", "en_US")
                pref = rng.choice(NICKNAMES[first])
        if "middle" in kinds or "middle_in_first" in kinds:
            middle = rng.choice(pools.first[("en_US", gender)])
        if "ascii" in kinds:
            loc = kw.setdefault("locale", rng.choice(("vi_VN", "pl_PL", "no_NO", "da_DK", "tr_TR", "de_DE")))
            for _ in range(200):  # a name with letters a US keyboard does not have
                first = first or rng.choice(pools.first[(loc, gender)])
                last = rng.choice(pools.last[loc])
                if _typed(first + last) != first + last and " " not in last:
                    break
                first = None if "nickname" not in kinds else first
        elif "double_surname" in kinds:
            loc = kw.setdefault("locale", "es_MX" if rng.random() < 0.7 else "en_US")
            single = [n for n in pools.last[loc] if " " not in n and "-" not in n]
            a, b = rng.sample(single, 2)
            last = f"{a} {b}" if loc != "en_US" else f"{a}-{b}"
        elif "particle" in kinds:
            particle, loc = rng.choice(_PARTICLES)
            kw.setdefault("locale", loc)
            last = f"{particle} {rng.choice([n for n in pools.last[loc] if ' ' not in n and '-' not in n])}"
        elif "suffix" in kinds:
            kw.setdefault("locale", "en_US")
            core = rng.choice([n for n in pools.last["en_US"] if " " not in n and "-" not in n])
            last = f"{core} {rng.choice(_SUFFIXES)}"
        p = self.person(group, gender=gender, first=first, last=last, middle=middle, birth="need", pref=pref, **kw)
        if "dob_swap" in kinds:  # a birth date that can be read both ways
            while p.birth is None or p.birth.day > 12 or p.birth.day == p.birth.month:
                p.birth = self.birth(group, p.last)
            self.taken.add((p.last.casefold(), p.birth.toordinal()))
        return p

    def kind(self, *, exclude: tuple[str, ...] = (), only: tuple[str, ...] = ()) -> str:
        names = [k for k, _ in _KINDS if k not in exclude and (not only or k in only)]
        return self.rng.choices(names, [w for k, w in _KINDS if k in names])[0]

    def dup_rows(self, recs: list[_Rec], cluster: str, detail: str) -> None:
        for i, a in enumerate(recs):
            for b in recs[i + 1:]:
                self.row("DUPLICATE", a.primary_id, b.primary_id, cluster, detail)

    # -- scenarios ----------------------------------------------------------------------------

    def s_dup_local(self) -> None:
        kind = self.kind()
        g1, g2 = self.rng.choice(_LOCAL_BORROWERS), self.rng.choice(_LOCAL_BORROWERS)
        p = self.dup_person(g1, [kind])
        a = self.local_rec(p, g1, active=True)
        b = self.local_rec(p, g2, active=True)
        self.vary(a, b, kind)
        self.add(a, b)
        self.dup_rows([a, b], self.cluster("D"), f"local_twice;{kind}")

    def s_dup_local_id_format(self) -> None:
        p = self.dup_person("COMMUNITY", [])
        a = self.local_rec(p, "COMMUNITY", active=True)
        pid = a.primary_id[:2] + self.rng.choice(_SEP) + a.primary_id[2:]
        b = self.local_rec(p, "COMMUNITY", pid=pid, active=True)
        self.vary(a, b, "exact")
        b.emails = [list(e) for e in a.emails]
        self.add(a, b)
        self.dup_rows([a, b], self.cluster("D"), "local_twice_id_format;exact")
        self.row("BAD_ID_FORMAT", pid, detail=pid)

    def s_dup_alum_old_sis(self) -> None:
        kind = self.kind(exclude=("no_birth",))
        p = self.dup_person("GRAD", [kind])  # a recent graduate
        old = self.sis_rec(p, self.rng.choice(("UGRAD", "GRAD")), in_sis=False)
        old.expiry = self.today + timedelta(days=self.rng.randint(20, 300))
        old.purge = old.expiry + timedelta(days=self.retention)
        if len(old.emails) == 1:
            old.emails.append([self.personal_email(p), ["personal"], False])
        new = self.local_rec(p, "ALUMNI", active=True)
        self.vary(old, new, kind)
        self.add(old, new)
        self.dup_rows([old, new], self.cluster("D"), f"alum_old_sis;{kind}")
        self.row("STALE_SIS_MISSING", old.primary_id, detail="left; now an alum")

    def s_dup_sis_local(self) -> None:
        group = self.rng.choice(_SIS_GROUPS)
        n_local = 2 if self.rng.random() < 0.25 else 1
        kinds = [self.kind(exclude=("swapped", "no_birth") + (_DOB + _NO_BIRTH if n_local == 2 else ()))]
        if n_local == 2:  # the second desk record differs in a way that combines with the first
            kinds.append(self.kind(only=_LIGHT))
        p = self.dup_person(group, kinds)
        s = self.sis_rec(p, group)
        s.record_type, s.roles = "PUBLIC", []
        recs = [s]
        for kind in kinds:
            lg = "LIBSTAFF" if group == "STAFF" and self.rng.random() < 0.5 else self.rng.choice(_LOCAL_BORROWERS)
            loc = self.local_rec(p, lg, active=True)
            self.vary(s, loc, kind)
            recs.append(loc)
        self.add(*recs)
        cluster = self.cluster("D")
        self.dup_rows(recs, cluster, "sis_and_local;" + "+".join(kinds))
        for loc in recs[1:]:
            self.row("SIS_LOCAL_OTHER_ID", loc.primary_id, s.primary_id, cluster, "in_alma")

    def s_dup_readmitted(self) -> None:
        kind = self.kind(exclude=("swapped", "married", "married_new_email", "pref_name", "initial") + _NO_BIRTH)
        p = self.dup_person("GRAD", [kind])
        old = self.sis_rec(p, "UGRAD", in_sis=False)
        old.identifiers = old.identifiers[:2]  # no NetID on the old record: the NetID moved on
        old.record_type, old.roles = "PUBLIC", []
        if self.rng.random() < 0.4:  # the SIS replaced the old record's school email by a personal one
            old.emails = [[self.other_email(p, 3), ["personal"], True]]
        new = self.sis_rec(p, "GRAD")
        self.vary(old, new, kind)
        self.add(old, new)
        self.dup_rows([old, new], self.cluster("D"), f"readmitted;{kind}")
        self.row("STALE_SIS_MISSING", old.primary_id, detail="re-admitted under a new id")

    def s_dup_local3(self) -> None:
        k1 = self.kind(exclude=("swapped", "married_new_email") + _NO_BIRTH + _DOB)
        k2 = self.kind(only=_LIGHT, exclude=(k1,))
        p = self.dup_person("COMMUNITY", [k1, k2])
        groups = self.rng.sample(_LOCAL_BORROWERS, 3)
        a = self.local_rec(p, groups[0], active=True)
        b = self.local_rec(p, groups[1], active=True)
        c = self.local_rec(p, groups[2], active=True)
        self.vary(a, b, k1)
        self.vary(a, c, k2)
        self.add(a, b, c)
        self.dup_rows([a, b, c], self.cluster("D"), f"local_three;{k1}+{k2}")

    def s_neg_same_name(self) -> None:
        """Namesakes: one of the commonest full names (John Smith, Fang Li), nothing else shared."""
        rng, pools = self.rng, self.pools
        loc = "zh_CN" if rng.random() < 0.25 else "en_US"
        gender = rng.choice(("FEMALE", "MALE"))
        first, last = rng.choice(pools.common_first[(loc, gender)]), rng.choice(pools.common_last[loc])
        g1, g2 = rng.choice(list(_GROUP_WEIGHTS)), rng.choice(("UGRAD", "COMMUNITY", "ALUMNI", "STAFF"))
        x = self.person(g1, locale=loc, gender=gender, first=first, last=last, birth="need", pref="")
        birth = self.birth(g2, x.last)
        for _ in range(50):
            if x.birth is not None and abs(birth.toordinal() - x.birth.toordinal()) > 730:
                break
            birth = self.birth(g2, x.last, (16, 90))
        y = self.person(g2, locale=loc, gender=gender, first=first, last=last, birth=birth, pref="")
        a, b = self.clean(g1, x), self.clean(g2, y)
        self.add(a, b)
        self.row("NOT_DUPLICATE", a.primary_id, b.primary_id, self.cluster("N"), "same_name")

    def household(self, a: _Rec, b: _Rec, *, phone: bool = True) -> None:
        """``a`` and ``b`` live at one address (preferred) and, with ``phone``, share its landline."""
        for r in (a, b):
            r.addresses = [dict(a.person.address, types=["home"])]
            if phone:
                home = self.phone(r.person, home=True)
                r.phones = [[n, t, False] for n, t, _ in r.phones if n != home] + [[home, ["home"], False]]
                r.phones[0][2] = True  # the mobile if there is one, else the landline

    def s_neg_twins(self) -> None:
        """Twins: surname, birth date, address and home phone shared; first names differ."""
        x = self.person("UGRAD", birth="need")
        y = self.person("UGRAD", last=x.last, birth=x.birth, locale=x.locale, address=x.address,
                        register=False)
        y.home_p = x.p
        while y.first.casefold() == x.first.casefold() or _ascii(y.first)[:1] == _ascii(x.first)[:1]:
            y.first = self.rng.choice(self.pools.first[(y.locale, y.gender)])
        y.pref_first = ""
        g2 = "UGRAD" if self.rng.random() < 0.6 else "COMMUNITY"
        a, b = self.sis_rec(x, "UGRAD"), self.clean(g2, y)
        self.household(a, b)
        self.add(a, b)
        self.row("NOT_DUPLICATE", a.primary_id, b.primary_id, self.cluster("N"), "twins")

    def s_neg_parent_child(self) -> None:
        """A father and son of one full name, decades apart, at one address; Jr/Sr on some."""
        rng = self.rng
        parent = self.person("FACULTY", gender="MALE", locale="en_US", birth=None, pref="")
        parent.birth = self.birth("FACULTY", parent.last, (45, 68))
        self.taken.add((parent.last.casefold(), parent.birth.toordinal()))
        child = self.person("UGRAD", gender="MALE", first=parent.first, last=parent.last,
                            middle=parent.middle, locale="en_US", address=parent.address, birth="need", pref="")
        child.home_p = parent.p
        a, b = self.sis_rec(parent, rng.choice(("FACULTY", "STAFF"))), self.sis_rec(child, "UGRAD")
        self.household(a, b, phone=rng.random() < 0.5)
        how = rng.randrange(5)  # the suffix on both, on the son only, on the father only, or on neither
        if how == 0:
            a.last, b.last = f"{parent.last} Sr", f"{parent.last} Jr"
        elif how == 1:
            b.last = f"{parent.last} {rng.choice(('Jr', 'Jr.', 'II'))}"
        elif how == 2:
            a.last = f"{parent.last} Sr."
        self.add(a, b)
        self.row("NOT_DUPLICATE", a.primary_id, b.primary_id, self.cluster("N"), "parent_child")

    def s_neg_spouses(self) -> None:
        """Spouses: one address and home phone, the surname shared in half; first names and births differ."""
        rng = self.rng
        g1, g2 = rng.choice(("FACULTY", "STAFF", "GRAD", "COMMUNITY")), rng.choice(("STAFF", "COMMUNITY", "ALUMNI", "FRIENDS"))
        x = self.person(g1, gender="MALE", birth="need")
        last = x.last if rng.random() < 0.5 else None
        y = self.person(g2, gender="FEMALE", last=last, locale=x.locale, address=x.address, birth="need")
        while _ascii(y.first)[:1] == _ascii(x.first)[:1] or (y.pref_first or y.first) == (x.pref_first or x.first):
            y.first = self.rng.choice(self.pools.first[(y.locale, y.gender)])
        y.home_p = x.p
        a, b = self.clean(g1, x), self.clean(g2, y)
        self.household(a, b)
        self.add(a, b)
        self.row("NOT_DUPLICATE", a.primary_id, b.primary_id, self.cluster("N"), "spouses")

    def s_neg_family_email(self) -> None:
        """A parent and a child who give one family email; other first names, decades apart."""
        rng = self.rng
        parent = self.person("COMMUNITY", birth=None, pref="")
        parent.birth = self.birth("COMMUNITY", parent.last, (42, 65))
        self.taken.add((parent.last.casefold(), parent.birth.toordinal()))
        child = self.person("UGRAD", last=parent.last, locale=parent.locale, address=parent.address,
                            birth="need", pref="")
        while _ascii(child.first)[:1] == _ascii(parent.first)[:1]:
            child.first = self.rng.choice(self.pools.first[(child.locale, child.gender)])
        n = _perm(parent.p, self.ids.person_space, self.ids.key(14))
        family = f"{_ascii(parent.last) or 'the'}family{n}@{parent.email_domain}"
        a = self.local_rec(parent, rng.choice(("COMMUNITY", "FRIENDS")), active=True)
        g2 = rng.choice(("UGRAD", "COMMUNITY"))
        b = self.clean(g2, child) if g2 == "UGRAD" else self.local_rec(child, g2, active=True)
        a.emails = [[family, ["personal"], True]]
        if b.external:
            b.emails.append([family, ["personal"], False])
        else:
            b.emails = [[family, ["personal"], True]]
        self.household(a, b, phone=False)
        self.add(a, b)
        self.row("NOT_DUPLICATE", a.primary_id, b.primary_id, self.cluster("N"), "family_email")

    def s_sis_local_other_id(self) -> None:
        kind = self.kind(only=_CLASSIC)
        group = self.rng.choice(_SIS_GROUPS)
        p = self.dup_person(group, [kind])
        s = self.sis_rec(p, group)
        if len(s.emails) == 1:  # the SIS knows the personal email the library registered
            s.emails.append([self.personal_email(p), ["personal"], False])
        s.record_type, s.roles = "PUBLIC", []
        loc = self.local_rec(p, self.rng.choice(_LOCAL_BORROWERS), active=True)
        self.vary(s, loc, kind)
        self.sis_only.append(s)
        self.add(loc)
        self.row("SIS_LOCAL_OTHER_ID", loc.primary_id, s.primary_id, "", f"not_in_alma;{kind}")

    def s_sis_local_same_id(self) -> None:
        group = self.rng.choice(_SIS_GROUPS)
        p = self.person(group)
        s = self.sis_rec(p, group)
        s.record_type, s.roles = "PUBLIC", []
        loc = self.local_rec(p, "COMMUNITY", pid=s.primary_id, active=True)
        loc.group = group
        loc.force_password_change = ""
        self.sis_only.append(s)
        self.add(loc)
        self.row("SIS_LOCAL_SAME_ID", loc.primary_id, detail=group)

    def s_stale(self) -> None:
        group = self.rng.choices(_SIS_GROUPS, (55, 15, 12, 18))[0]
        r = self.sis_rec(self.person(group), group, in_sis=False)
        if self.rng.random() < 0.3:  # expired and deactivated, not yet purgeable
            r.expiry = self.today - timedelta(days=self.rng.randint(1, 300))
            r.purge = r.expiry + timedelta(days=self.retention)
            r.status = "INACTIVE"
        self.add(r)
        self.row("STALE_SIS_MISSING", r.primary_id, detail=group)

    def s_expired_active(self) -> None:
        group = self.rng.choice(_LOCAL_BORROWERS)
        r = self.local_rec(self.person(group), group, active=True)
        r.expiry = self.today - timedelta(days=self.rng.randint(1, 300))
        r.purge = r.expiry + timedelta(days=self.retention)
        self.add(r)
        self.row("EXPIRED_ACTIVE", r.primary_id, detail=_d(r.expiry) or "")

    def s_no_purge(self) -> None:
        group = self.rng.choice(_LOCAL_BORROWERS + ("LIBSTAFF", "UGRAD", "FACULTY"))
        r = self.clean(group)
        r.purge = None
        self.add(r)
        self.row("NO_PURGE_DATE", r.primary_id, detail=group)

    def s_purge_passed(self) -> None:
        group = self.rng.choice(_LOCAL_BORROWERS)
        r = self.local_rec(self.person(group), group, active=False)
        r.expiry = self.today - timedelta(days=self.rng.randint(self.retention + 1, 3 * 365))
        r.purge = r.expiry + timedelta(days=self.retention)
        r.status_date = r.expiry
        self.add(r)
        self.row("PURGE_PASSED", r.primary_id, detail=_d(r.purge) or "")

    def s_purge_too_soon(self) -> None:
        group = self.rng.choice(_LOCAL_BORROWERS + ("LIBSTAFF", "GRAD"))
        r = self.clean(group, active=True) if group not in _SIS_GROUPS else self.clean(group)
        assert r.expiry is not None
        r.expiry = max(r.expiry, self.today + timedelta(days=40))
        gap = self.rng.choice((0, 0, 30, 90, 180, -20))
        r.purge = r.expiry + timedelta(days=gap)
        self.add(r)
        self.row("PURGE_TOO_SOON", r.primary_id, detail=f"purge = expiry {gap:+d} days")

    def s_missing_field(self) -> None:
        what = self.rng.choice(("first_name", "first_name", "last_name", "expiry_date", "email_address",
                                "email_type"))
        group = "UGRAD" if what == "first_name" and self.rng.random() < 0.5 else self.rng.choice(_LOCAL_BORROWERS)
        r = self.clean(group) if group in _SIS_GROUPS else self.clean(group, active=True)
        if what == "first_name":  # a mononym, or a form saved without it
            r.first, r.middle = "", ""
        elif what == "last_name":
            r.last = ""
        elif what == "expiry_date":
            r.expiry = None
            r.purge = self.today + timedelta(days=self.rng.randint(200, 700))
        elif what == "email_address":
            r.emails = []
        else:
            r.emails[0][1] = []
        self.add(r)
        self.row("MISSING_FIELD", r.primary_id, detail=what)

    def s_profile_missing(self) -> None:
        group = self.rng.choice(_SIS_GROUPS)
        r = self.sis_rec(self.person(group), group)
        r.external_id = ""
        self.add(r)
        self.row("SIS_PROFILE_MISSING", r.primary_id, detail=group)

    def s_profile_unknown(self) -> None:
        group = self.rng.choice(_SIS_GROUPS)
        r = self.sis_rec(self.person(group), group)
        r.external_id = self.rng.choice(_PROFILE_OLD)
        self.add(r)
        self.row("SIS_PROFILE_UNKNOWN", r.primary_id, detail=r.external_id)

    def s_local_in_sis_group(self) -> None:
        group = self.rng.choices(_SIS_GROUPS, (30, 20, 35, 15))[0]  # visiting scholars, guests
        p = self.person(group)
        r = self.local_rec(p, "COMMUNITY", pid=self.ids.univ(), active=True)
        r.group, r.force_password_change = group, ""
        self.add(r)
        self.row("LOCAL_IN_SIS_GROUP", r.primary_id, detail=group)

    def s_id_collision(self) -> None:
        rng = self.rng
        ga = rng.choice(("UGRAD", "GRAD", "STAFF") + _LOCAL_BORROWERS)
        gb = rng.choice(_LOCAL_BORROWERS)
        a = self.clean(ga) if ga in _SIS_GROUPS else self.clean(ga, active=True)
        b = self.clean(gb, active=True)
        how = rng.randrange(3)
        if how == 0:  # the same barcode typed with stray spaces
            ref = next(i for i in a.identifiers if i[0] == "BARCODE")[1]
            value = rng.choice((ref + " ", " " + ref, ref[:5] + " " + ref[5:]))
        elif how == 1 or ga in _SIS_GROUPS:  # an old letter barcode, typed in another case
            ref = self.ids.legacy_barcode()
            a.identifiers.append(["BARCODE", ref, "ACTIVE"])
            value = ref.lower() + rng.choice(("", " "))
        else:  # the other record's primary id typed into the barcode field
            ref = a.primary_id
            value = ref.lower()
        b.identifiers[0][1] = value
        self.add(a, b)
        self.row("ID_COLLISION", b.primary_id, a.primary_id, "", f"BARCODE: {value!r} vs {ref!r}")

    def s_multi_preferred(self) -> None:
        group = self.rng.choice(("UGRAD", "GRAD", "FACULTY") + _LOCAL_BORROWERS)
        r = self.clean(group) if group in _SIS_GROUPS else self.clean(group, active=True)
        p = r.person
        extra = (self.personal_email(p, "work.example.com") if r.external else
                 self.personal_email(p, self.rng.choice([d for d in _FREEMAIL if d != p.email_domain])))
        r.emails = [e for e in r.emails if e[2]] + [[extra, ["work" if r.external else "personal"], True]]
        self.add(r)
        self.row("MULTI_PREFERRED_EMAIL", r.primary_id, detail=extra)

    def s_bad_email(self) -> None:
        group = self.rng.choice(("UGRAD",) + _LOCAL_BORROWERS + _LOCAL_BORROWERS)
        r = self.clean(group) if group in _SIS_GROUPS else self.clean(group, active=True)
        good = r.emails[0][0]
        local, _, domain = good.partition("@")
        host = domain.rsplit(".", 1)[0]
        bad = self.rng.choice((f"{local}@@{domain}", f"{local[:3]} {local[3:]}@{domain}", f"{local}@{host}",
                               f"{local}.{domain}", f"{local}@{host},{domain.rsplit('.', 1)[1]}",
                               f"{local}@.{domain}"))
        r.emails[0][0] = bad
        self.add(r)
        self.row("BAD_EMAIL", r.primary_id, detail=bad)

    def s_bad_id_format(self) -> None:
        how = self.rng.randrange(5)
        group = ("ALUMNI", "ALUMNI", "FRIENDS", "COMMUNITY", "LIBSTAFF")[how]
        p = self.person(group)
        if how == 0:
            pid = self.ids.local("AL")[2:]  # the prefix left off
        elif how == 1:
            pid = "AL " + self.ids.local("AL")[2:]
        elif how == 2:
            pid = self.ids.local("FR") + str(self.rng.randrange(10))
        elif how == 3:
            pid = self.ids.local("RB")  # moved from reciprocal to community, id kept
        else:
            login = self.login(p)
            pid = login[0] + "." + login[1:]
        r = self.local_rec(p, group, pid=pid, active=True)
        self.add(r)
        self.row("BAD_ID_FORMAT", pid, detail=pid)

    def s_sis_new(self) -> None:
        group = self.rng.choices(_SIS_GROUPS, (70, 20, 5, 5))[0]
        s = self.sis_rec(self.person(group), group)
        s.record_type, s.roles = "PUBLIC", []
        self.sis_only.append(s)

    # -- the chunk ----------------------------------------------------------------------------

    def build(self) -> None:
        rng = self.rng
        for name, per_1000 in _PLAN:
            exact = per_1000 * self.size / 1000
            n = int(exact) + (rng.random() < exact - int(exact))
            method = getattr(self, "s_" + name)
            for _ in range(n):
                before = len(self.alma), len(self.rows), len(self.sis_only)
                method()
                if len(self.alma) > self.size:  # a tiny institution: drop what does not fit
                    del self.alma[before[0]:], self.rows[before[1]:], self.sis_only[before[2]:]
                    break
        groups = list(_GROUP_WEIGHTS)
        weights = list(_GROUP_WEIGHTS.values())
        for group in rng.choices(groups, weights, k=self.size - len(self.alma)):
            self.add(self.clean(group))
        rng.shuffle(self.alma)
        rng.shuffle(self.sis_only)

    # -- JSON -----------------------------------------------------------------------------------

    def user_json(self, r: _Rec) -> dict[str, Any]:
        """The record as ``GET /users/{id}`` returns it."""
        seg = "External" if r.external else "Internal"
        g = self.groups[r.group]
        u: dict[str, Any] = {
            "record_type": _c(r.record_type, r.record_type.title()),
            "primary_id": r.primary_id, "first_name": r.first, "middle_name": r.middle,
            "last_name": r.last, "full_name": " ".join(x for x in (r.first, r.middle, r.last) if x),
            "user_title": _c(r.title, _TITLES[r.title]), "job_category": _c("", ""),
            "job_description": r.job,
            "gender": _c(r.person.gender, r.person.gender.title()) if r.person.show_gender else _c("", ""),
            "user_group": _c(r.group, g.description),
            "campus_code": _c(r.campus, "Main Campus" if r.campus else ""), "web_site_url": "",
            "cataloger_level": _c("00", "[00] Default Level"),
            "preferred_language": _c(r.language, _LANG[r.language]),
        }
        for key, value in (("birth_date", r.birth), ("expiry_date", r.expiry), ("purge_date", r.purge)):
            if value is not None:
                u[key] = _d(value)
        u["account_type"] = _c("EXTERNAL", "External") if r.external else _c("INTERNAL", "Internal")
        u["external_id"] = r.external_id
        u["password"] = ""
        u["force_password_change"] = r.force_password_change
        u["status"] = _c(r.status, r.status.title())
        u["status_date"] = _d(r.status_date)
        if r.last_activity is not None and r.status == "ACTIVE":
            u["last_patron_activity_date"] = _d(r.last_activity)
        requests, loans, fees = r.counts
        u["requests"], u["loans"], u["fees"] = {"value": requests}, {"value": loans}, {"value": fees}
        u["contact_info"] = {
            "address": [{"line1": a["line1"], "line2": a["line2"], "line3": None, "line4": None,
                         "line5": None, "city": a["city"], "state_province": a["state_province"],
                         "postal_code": a["postal_code"], "country": _c("USA", "United States"),
                         "address_note": "", "start_date": _d(r.status_date), "preferred": i == 0,
                         "segment_type": seg,
                         "address_type": [_c(t, _TYPE_DESC[t]) for t in a["types"]]}
                        for i, a in enumerate(r.addresses)],
            "email": [{"email_address": addr, "description": None, "preferred": pref, "segment_type": seg,
                       "email_type": [_c(t, _TYPE_DESC[t]) for t in types]} for addr, types, pref in r.emails],
            "phone": [{"phone_number": num, "preferred": pref, "preferred_sms": False, "segment_type": seg,
                       "phone_type": [_c(t, _TYPE_DESC[t]) for t in types]} for num, types, pref in r.phones],
        }
        u.update(pref_first_name=r.pref_first, pref_middle_name="", pref_last_name="", pref_name_suffix="",
                 is_researcher=False, researcher=None, link=None)
        u["user_identifier"] = [{"value": v, "id_type": _c(t, _ID_TYPES[t]), "note": "", "status": st,
                                 "segment_type": seg} for t, v, st in r.identifiers]
        roles = [{"status": _c("ACTIVE", "Active"), "scope": _c(INSTITUTION_CODE, INSTITUTION_NAME),
                  "role_type": _c("200", "Patron"), "parameter": []}]
        for code in r.roles:
            roles.append({"status": _c("ACTIVE", "Active"), "scope": _c("MAIN", "Main Library"),
                          "role_type": _c(code, _ROLE_DESC[code]),
                          "parameter": [{"type": _c("CirculationDesk", None), "scope": _c("MAIN", "Main Library"),
                                         "value": _c("DEFAULT_CIRC_DESK", "Main Circulation Desk")}]})
        u["user_role"] = roles
        u["user_block"] = [{"block_type": _c("GENERAL", "General"), "block_description": _c("02", "Overdue items"),
                            "block_status": "ACTIVE", "block_note": "", "created_by": "System",
                            "created_date": f"{b['date'].isoformat()}T02:00:00.000Z", "segment_type": "Internal"}
                           for b in r.blocks]
        u["user_note"] = [{"note_type": _c(n["type"], n["type"].title()), "note_text": n["text"],
                           "user_viewable": False, "popup_note": False, "created_by": "System",
                           "created_date": n["date"], "segment_type": "Internal"} for n in r.notes]
        # No category_type: it is output-only and absent on real records (see sandbox.app).
        u["user_statistic"] = [{"statistic_category": _c(g.patron_type, g.patron_type.title()),
                                "statistic_note": "", "segment_type": seg}]
        u["proxy_for_user"] = []
        return u


def _sis_json(user: dict[str, Any]) -> dict[str, Any]:
    """What the SIS sends for a person: the external segments of the record, no nulls, as SIS."""
    s: dict[str, Any] = {}
    for key in _SIS_KEYS:
        if key not in user:
            continue
        value = user[key]
        if key == "contact_info":
            value = {k: [{f: v for f, v in item.items() if v is not None} for item in items]
                     for k, items in value.items()}
        elif key in ("user_identifier", "user_statistic"):
            value = [i for i in value if i.get("segment_type") == "External"]
        elif isinstance(value, dict) and value.get("value") is None:
            continue
        s[key] = value
    s["record_type"] = _c("PUBLIC", "Public")
    s["account_type"] = _c("EXTERNAL", "External")
    s["external_id"] = SIS_PROFILE
    s["status"] = _c("ACTIVE", "Active")
    return s


def _chunks(users: int, seed: int, today: date) -> Iterator[_Chunk]:
    if not 0 <= users <= MAX_USERS:
        raise ValueError(f"users must be between 0 and {MAX_USERS:,}, not {users}")
    n_chunks = -(-users // BATCH_SIZE)
    for k in range(n_chunks):
        chunk = _Chunk(k, min(BATCH_SIZE, users - k * BATCH_SIZE), seed, today, n_chunks)
        chunk.build()
        yield chunk


def iter_sandbox_users(users: int = 5000, *, seed: int = 0, today: date | None = None) -> Iterator[dict[str, Any]]:
    """Yield the Alma user objects of the synthetic institution, without writing any file.

    The same records, in the same order, that :func:`generate_institution` passes to its sink.
    """
    today = today or date.today()
    for chunk in _chunks(users, seed, today):
        for r in chunk.alma:
            yield chunk.user_json(r)


class _ZipXml:
    """Writes users to a zip of ``<users>`` files of at most FILE_USERS each, with bounded memory."""

    def __init__(self, path: Path, prefix: str, today: date) -> None:
        self.zf = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
        self.prefix, self.stamp = prefix, (today.year, today.month, today.day, 0, 0, 0)
        self.tmp = tempfile.TemporaryFile()
        self.n = self.files = 0

    def add(self, fragment: bytes) -> None:
        self.tmp.write(fragment + b"\n")  # one user per line: text newlines are escaped
        self.n += 1
        if self.n == FILE_USERS:
            self.flush()

    def flush(self) -> None:
        self.files += 1
        info = zipfile.ZipInfo(f"{self.prefix}_{self.files:04d}.xml", self.stamp)
        info.compress_type, info.create_system, info.external_attr = zipfile.ZIP_DEFLATED, 3, 0o644 << 16
        setattr(info, "compress_level" if hasattr(info, "compress_level") else "_compresslevel", 1)
        self.tmp.seek(0)
        with self.zf.open(info, "w") as out:
            write_users_xml(out, (line[:-1] for line in self.tmp), self.n)
        self.tmp.seek(0)
        self.tmp.truncate()
        self.n = 0

    def close(self) -> None:
        if self.n or not self.files:
            self.flush()
        self.tmp.close()
        self.zf.close()

    def abort(self) -> None:
        self.tmp.close()
        try:
            self.zf.close()
        except (OSError, ValueError):
            pass


def generate_institution(out_dir: Path, *, users: int = 5000, seed: int = 0, today: date | None = None,
                         sink: Callable[[list[dict[str, Any]]], None] | None = None, export: bool = False,
                         progress: bool = False) -> InstitutionInfo:
    """Generate Sandbox University: its users, SIS extract and the ground truth of planted problems.

    Args:
        out_dir: Directory for ``sis_extract.zip``, ``ground_truth.csv``, ``institution.json`` and
            (with ``export``) ``users_export.zip``; created if missing. Files are written under a
            temporary name and renamed when complete.
        users: Number of Alma user records (at most :data:`MAX_USERS`).
        seed: Random seed; with ``users`` and ``today`` it fixes every byte of the output.
        today: The date the data is "as of" (default: the real today).
        sink: Called with each batch (up to 5,000) of full Alma user objects, e.g. to load a store.
        export: Also write every Alma user as Export Users v2 XML.
        progress: Show a progress bar (tqdm).

    Returns:
        The :class:`InstitutionInfo` (also written to ``institution.json``).

    Raises:
        ValueError: ``users`` is out of range.
    """
    today = today or date.today()
    if not 0 <= users <= MAX_USERS:
        raise ValueError(f"users must be between 0 and {MAX_USERS:,}, not {users}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = ["sis_extract.zip", "ground_truth.csv"] + (["users_export.zip"] if export else [])
    parts = {n: out / f".{n}.part" for n in names}
    counts: Counter[str] = Counter({g: 0 for g in _policy()[0]})
    counts.update({rule: 0 for rule in (*RULES, "NOT_DUPLICATE")})
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=users, unit="user", desc="Sandbox University")
    sis = _ZipXml(parts["sis_extract.zip"], "sis", today)
    exp = _ZipXml(parts["users_export.zip"], "users", today) if export else None
    try:
        with open(parts["ground_truth.csv"], "w", newline="", encoding="utf-8") as gt:
            writer = csv.writer(gt, lineterminator="\n")
            writer.writerow(GROUND_TRUTH_COLUMNS)
            for chunk in _chunks(users, seed, today):
                batch = [chunk.user_json(r) for r in chunk.alma]
                for r, u in zip(chunk.alma, batch):
                    counts[r.group] += 1
                    if exp is not None:
                        exp.add(user_to_xml_bytes(u, xml_declaration=False))
                    if r.in_sis:
                        sis.add(user_to_xml_bytes(_sis_json(u), xml_declaration=False))
                for r in chunk.sis_only:
                    sis.add(user_to_xml_bytes(_sis_json(chunk.user_json(r)), xml_declaration=False))
                counts["sis_extract_users"] += sum(r.in_sis for r in chunk.alma) + len(chunk.sis_only)
                in_alma = {r.primary_id.casefold() for r in chunk.alma}
                counts["sis_new_users"] += sum(r.primary_id.casefold() not in in_alma for r in chunk.sis_only)
                counts.update(row[0] for row in chunk.rows)
                writer.writerows(chunk.rows)
                if sink is not None:
                    sink(batch)
                if bar is not None:
                    bar.update(len(batch))
        sis.close()
        if exp is not None:
            exp.close()
        for n, part in parts.items():
            os.replace(part, out / n)
    except BaseException:
        for w in (sis, exp):
            if w is not None:
                w.abort()
        for part in parts.values():
            part.unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    counts["users"] = users
    info = InstitutionInfo(users, seed, today, SIS_PROFILE, dict(sorted(counts.items())))
    tmp = out / ".institution.json.part"
    tmp.write_text(json.dumps(info.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / "institution.json")
    return info
