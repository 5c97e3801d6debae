"""Duplicate patron records: which records belong to one person, how sure we are, and why.

For librarians
--------------
Two records are compared when they share something a person's records usually share: any email
address, any phone number, any identifier, an email user name (``jane.doe`` at two providers), an
address together with the surname or the first name, the birth date together with a first name or
a part of the surname, a name that sounds the same (Double-Metaphone-like keys) born the same year,
or the same full name when few people have it. Each compared pair is then scored field by field:

* **first name**: equal; a nickname or the preferred name (Bill and William, "Jack" for Hương); the
  names swapped with the surname; a one-letter typo; a middle name used as the first name; an
  initial (J. and John); alike; or different, which is strong evidence of two people;
* **surname**: equal; one part of a double surname (García López and Lopez); a typo; the old surname
  still in an email address (a married name); or different (allowed only with strong other evidence);
* **birth date**: equal; day and month swapped; one digit off; or different, and far apart (a parent
  and a child) counts heavily against;
* **email**, **phone**, **address**, **identifier**: any shared value; the **middle name** and a
  **generational suffix** (Jr/Sr, different ones are two people).

A rare agreement counts more than a common one: agreeing on "Smith" is weaker evidence than on
"Quackenbush", and the kit learns how common each name is from the data. A household (an address,
a phone or a family email shared by twins, spouses, a parent and a child) never links people whose
first names differ or whose birth dates disagree.

Two tiers come out. **Likely** pairs (match probability at or above :data:`DEFAULT_THRESHOLD`, and
no conflict) go to ``duplicates.csv`` and the merge proposals. **Possible** pairs (probability at or
above :data:`POSSIBLE_THRESHOLD`, or a likely score held back by a conflict that a person should look
at: a changed surname with only name and birth date, birth dates that disagree, two live SIS records)
go to ``possible_duplicates.csv`` for review. Staff decisions on pairs (:mod:`almatools.quality.review`)
are kept between runs: "different people" is never proposed again, "same person" joins the likely tier.

Linked records form clusters, one per person. A cluster is accepted only if every two members are
consistent (no conflicting first names or birth dates, no two live SIS identities, no pair marked
different); otherwise it is split at its weakest link, and the links cut go to the possible tier.

Technical detail
----------------
A Fellegi-Sunter model run by splink (DuckDB by default; ``backend="spark"`` runs the same settings
through splink's ``SparkAPI``). Each comparison level has an m probability (how often the records of
one person fall in the level) and a u probability (how often two people's do), see :data:`MODEL`.

Weights are learnt from the data being analysed when it is large enough (:data:`MIN_TRAIN_RECORDS`):
u by random sampling of record pairs, m by expectation-maximisation over the pairs that share a birth
date and surname, then over those that share their first email address (each pass learns the comparisons its
blocking rule does not fix). Learnt values are **clamped to each level's bounds** (:class:`_Level`
``m_range``/``u_range``): EM on a population of namesakes can otherwise decide that ``jwang@`` and
``lwang@`` are strong evidence, or that a different first name is a usual thing for one person. The
values used are in :attr:`DuplicateResult.model` (and the run's summary); if training fails or the
input is small, the fixed values below are used. Training always runs on DuckDB (the prepared table is
there), so the Spark backend scores with the same model. Name agreement is term-frequency adjusted.

The prior, the probability that two random records are one person, is
``2 * DUPLICATE_RATE / (n - 1)``. Blocking rules (:data:`BLOCKING_RULES`) are equi-joins on exploded
keys, so candidate pairs grow about linearly; a key that more than :data:`MAX_KEY_RECORDS` records
share (``none@none.com``, a switchboard, ``N/A``) is a placeholder and is dropped first, and a full name
brings records together only when at most :data:`MAX_NAME_RECORDS` hold it. Every value is
normalised by :mod:`almatools.normalise`, the kit's one definition. A cluster's id is ``"C-"`` and a
hash of its sorted member ids, the same in every run that finds the same members.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import jellyfish
import numpy as np
import pandas as pd
import pyarrow as pa

import pyarrow.compute as pc

from almatools.normalise import (address_key_column, email_key_column, email_user_column, given_name, given_tokens,
                                 identifier_loose_column, is_academic_column, is_email_column, name_forms, name_suffix,
                                 phone_key_column, surname_key, surname_parts)

__all__ = [
    "BLOCKING_RULES",
    "DEFAULT_THRESHOLD",
    "DUPLICATE_RATE",
    "LINKAGE_COLUMNS",
    "MAX_KEY_RECORDS",
    "MAX_NAME_RECORDS",
    "MIN_TRAIN_RECORDS",
    "MODEL",
    "POSSIBLE_THRESHOLD",
    "DuplicateResult",
    "candidate_pairs",
    "find_duplicates",
    "linkage_settings",
    "prepare_records",
    "spark_session",
]

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.9
"""Match probability at and above which a consistent pair is *likely* the same person."""
POSSIBLE_THRESHOLD = 0.2
"""Match probability at and above which a pair is shown for review as *possible*."""
DUPLICATE_RATE = 0.03
"""The share of records assumed to have a duplicate; sets the model's prior."""
MAX_KEY_RECORDS = 20
"""A key (email, phone, identifier, address) held by more records than this is a placeholder."""
MAX_NAME_RECORDS = 5
"""A full name held by more records than this is not rare: it does not bring records together on its own."""
MIN_TRAIN_RECORDS = 5000
"""Below this many records the fixed m/u values are used instead of learning them from the data."""
U_SAMPLE_PAIRS = 300_000
"""Random record pairs sampled to learn the u probabilities (levels seen fewer than 100 times keep theirs)."""
DISPLAY_COLUMNS = ("first_name", "last_name", "user_group", "account_type", "birth_date", "email")


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class _Level:
    """One comparison level: its key, the evidence phrase, the SQL (a splink level creator), m and u.

    ``m_range``/``u_range`` bound what training may learn (default: m within a factor 3, u within a
    factor 10 of the fixed values, and never above 1).
    """

    key: str
    phrase: str  # "" for null levels; "{l}" / "{r}" are replaced by the two records' values
    make: Callable[[], Any]
    m: float
    u: float
    agrees: bool = True  # listed as agreement (else as a difference) in the evidence
    tf: str | None = None  # term-frequency adjusted on this column: common values count less
    m_range: tuple[float, float] | None = None
    u_range: tuple[float, float] | None = None

    def bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        m = self.m_range or (self.m / 3, min(1.0, self.m * 3))
        u = self.u_range or (self.u / 10, min(1.0, self.u * 10))
        return m, u


@dataclass(frozen=True)
class _Comparison:
    name: str  # output column name, e.g. "first_name"
    shown: str  # the frame column whose values fill "{l}" / "{r}"
    levels: tuple[_Level, ...]

    def level(self, gamma: int) -> _Level:
        """The level of a splink gamma value (-1 null, 0 the last level, …)."""
        return self.levels[0] if gamma < 0 else self.levels[len(self.levels) - 1 - gamma]


def _cl() -> Any:
    import splink.comparison_level_library as cl

    return cl


def _null(*cols: str) -> Callable[[], Any]:
    def make() -> Any:
        cl = _cl()
        return cl.Or(*(cl.NullLevel(c) for c in cols)) if len(cols) > 1 else cl.NullLevel(cols[0])

    return make


def _sql(condition: str) -> Callable[[], Any]:
    """A level written in DuckDB's SQL (splink translates it for Spark)."""
    return lambda: _cl().CustomLevel(condition, base_dialect_str="duckdb")


def _exact(col: str) -> Callable[[], Any]:
    return lambda: _cl().ExactMatchLevel(col)


def _shared(col: str) -> Callable[[], Any]:
    """The two records' lists share a value (splink writes the SQL of each backend's dialect)."""
    return lambda: _cl().ArrayIntersectLevel(col, 1)


def _all(*makers: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: _cl().And(*(m() for m in makers))


def _any(*makers: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: _cl().Or(*(m() for m in makers))


def _dl1(col: str) -> Callable[[], Any]:
    return lambda: _cl().DamerauLevenshteinLevel(col, 1)


def _jw(col: str, at: float) -> Callable[[], Any]:
    return lambda: _cl().JaroWinklerLevel(col, at)


def _else() -> Any:
    return _cl().ElseLevel()


_FULL = "length(fn_l) > 1 AND length(fn_r) > 1"
_SWAPPED = "fn_key_l = ln_r AND ln_l = fn_key_r"
_LONG = "least(length({c}_l), length({c}_r)) >= 4"
_SWAP_DM = ("substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4) AND "
            "substr(birth_date_l, 6, 2) = substr(birth_date_r, 9, 2) AND "
            "substr(birth_date_l, 9, 2) = substr(birth_date_r, 6, 2)")
_YEARS_APART = "abs(CAST(substr(birth_date_l, 1, 4) AS INTEGER) - CAST(substr(birth_date_r, 1, 4) AS INTEGER))"

MODEL: tuple[_Comparison, ...] = (
    _Comparison("first_name", "first_name", (
        _Level("null", "", _null("fn"), 1, 1),
        _Level("initials", "first name initial ({l}/{r})", _sql("fn_l = fn_r AND length(fn_l) = 1"), 0.01, 0.004),
        _Level("exact", "first name equal", _exact("fn"), 0.70, 0.004, tf="fn"),
        _Level("spacing", "first name equal", _sql("fn_key_l = fn_key_r"), 0.02, 0.0005),
        _Level("forms", "first name nickname or preferred name ({l}/{r})", _all(_sql(_FULL), _shared("fn_forms")),
               0.12, 0.0008),
        _Level("swap", "first and last name swapped ({l}/{r})", _sql(_SWAPPED), 0.02, 2e-7),
        # a typo in the name or in one of its forms (Eliaabeth for Betty): forms one letter apart share a
        # one-letter deletion (fn_near)
        _Level("typo", "first name typo ({l}/{r})",
               _any(_all(_sql(_LONG.format(c="fn")), _dl1("fn")), _all(_sql(_FULL), _shared("fn_near"))),
               0.06, 0.0008),
        _Level("typo_short", "first name typo ({l}/{r})",
               _all(_sql("least(length(fn_l), length(fn_r)) = 3 AND substr(fn_l, 1, 1) = substr(fn_r, 1, 1)"),
                    _dl1("fn")), 0.01, 0.002),
        _Level("moved", "middle name used as the first name ({l}/{r})",
               _sql("list_contains(middles_r, fn_l) OR list_contains(middles_l, fn_r)"), 0.03, 0.002),
        _Level("initial", "first name initial ({l}/{r})",
               _sql("(length(fn_l) = 1 OR length(fn_r) = 1) AND substr(fn_l, 1, 1) = substr(fn_r, 1, 1)"),
               0.04, 0.004),
        _Level("similar", "first name similar ({l}/{r})", _all(_sql(_FULL), _jw("fn", 0.92)), 0.01, 0.001),
        # a short form cut from the name's start or end (Chris, Topher, Liam for William)
        _Level("contained", "first name short form ({l}/{r})",
               _sql("least(length(fn_l), length(fn_r)) >= 3 AND (instr(fn_l, fn_r) > 0 OR instr(fn_r, fn_l) > 0)"),
               0.02, 0.002),
        _Level("differs", "first name differs ({l}/{r})", _else, 0.02, 0.98, agrees=False,
               m_range=(0.005, 0.03)),
    )),
    _Comparison("last_name", "last_name", (
        _Level("null", "", _null("ln"), 1, 1),
        _Level("exact", "last name equal", _exact("ln"), 0.75, 0.002, tf="ln"),
        _Level("swap", "", _sql(_SWAPPED), 1e-5, 1e-5),  # scored once, on the first name
        _Level("part_rare", "last name part of the other ({l}/{r})", _shared("ln_rare"), 0.04, 2e-5),
        _Level("part", "last name part of the other ({l}/{r})", _shared("ln_parts"), 0.02, 0.0005),
        _Level("typo", "last name typo ({l}/{r})", _all(_sql(_LONG.format(c="ln")), _dl1("ln")), 0.06, 0.0004),
        _Level("similar", "last name similar ({l}/{r})", _jw("ln", 0.92), 0.01, 0.0008),
        _Level("in_middle", "last name changed, the old one now a middle name ({l}/{r})",
               _sql("list_contains(middles_r, ln_l) OR list_contains(middles_l, ln_r)"), 0.02, 0.0002),
        _Level("in_email", "last name changed, the old one in an email ({l}/{r})",
               # the record's own names are taken out first: Tao Li's taoli@… does not name Tao Tao
               _sql("(length(ln_l) >= 3 AND instr(replace(replace(email_names_r, coalesce(fn_r, '#'), ' '), ln_r, ' '), ln_l) > 0)"
                    " OR (length(ln_r) >= 3 AND "
                    "instr(replace(replace(email_names_l, coalesce(fn_l, '#'), ' '), ln_l, ' '), ln_r) > 0)"), 0.03, 0.001),
        # a new surname (marriage) with the same first name and birth date: the surname alone says little
        _Level("changed", "last name changed ({l}/{r})",
               _all(_any(_sql("fn_l = fn_r"), _shared("fn_forms")), _sql("birth_date_l = birth_date_r")),
               0.04, 0.04, agrees=False, m_range=(0.02, 0.06), u_range=(0.02, 0.06)),
        _Level("differs", "last name differs ({l}/{r})", _else, 0.07, 0.995, agrees=False),
    )),
    _Comparison("birth_date", "birth_date", (
        _Level("null", "", _null("birth_date"), 1, 1),
        _Level("exact", "same birth date", _exact("birth_date"), 0.93, 0.00015),
        _Level("swap", "birth date day and month swapped ({l}/{r})", _sql(_SWAP_DM), 0.01, 2e-6),
        _Level("typo", "birth date one digit off ({l}/{r})", _dl1("birth_date"), 0.03, 0.002),
        _Level("far", "birth dates far apart ({l}/{r})", _sql(f"{_YEARS_APART} >= 12"), 0.002, 0.6,
               agrees=False, m_range=(0.0005, 0.004)),
        _Level("differs", "birth date differs ({l}/{r})", _else, 0.03, 0.4, agrees=False,
               m_range=(0.01, 0.05)),
    )),
    _Comparison("email", "email", (
        _Level("null", "", _null("emails"), 1, 1),
        _Level("exact", "email equal", _shared("emails"), 0.55, 1e-5),
        _Level("user", "email user name equal", _shared("email_users"), 0.10, 3e-5, m_range=(0.03, 0.2),
               u_range=(1e-5, 1e-3)),
        _Level("else", "", _else, 0.35, 1.0),
    )),
    _Comparison("phone", "phone", (
        _Level("null", "", _null("phones"), 1, 1),
        _Level("exact", "phone equal", _shared("phones"), 0.6, 2e-5),
        _Level("else", "", _else, 0.4, 1.0),
    )),
    _Comparison("address", "line1", (
        _Level("null", "", _null("addresses"), 1, 1),
        # a shared street address (apartment included) is rare between two random records; households
        # (twins, spouses, a parent and a child) are kept apart by their names and birth dates instead
        _Level("exact", "address equal", _shared("addresses"), 0.5, 5e-5, u_range=(1e-6, 1e-3)),
        _Level("else", "", _else, 0.5, 1.0),
    )),
    _Comparison("middle_name", "middle_name", (
        _Level("null", "", _null("mn"), 1, 1),
        _Level("exact", "middle name equal", _sql("mn_l = mn_r AND length(mn_l) > 1"), 0.8, 0.1),
        _Level("initial", "middle name initial ({l}/{r})",
               _sql("(length(mn_l) = 1 OR length(mn_r) = 1) AND substr(mn_l, 1, 1) = substr(mn_r, 1, 1)"), 0.1, 0.2),
        _Level("differs", "middle name differs ({l}/{r})", _else, 0.1, 0.7, agrees=False),
    )),
    _Comparison("identifier", "identifier_values", (
        _Level("null", "", _null("ids"), 1, 1),
        _Level("exact", "identifier equal", _shared("ids"), 0.08, 2e-7),
        _Level("else", "", _else, 0.92, 1.0),
    )),
    _Comparison("suffix", "last_name", (
        _Level("null", "", _sql("suffix_l = '' AND suffix_r = ''"), 1, 1),
        _Level("exact", "", _sql("suffix_l = suffix_r"), 0.95, 0.5),
        _Level("one", "a generational suffix on one record only", _sql("suffix_l = '' OR suffix_r = ''"), 0.1, 0.3,
               agrees=False),
        _Level("differs", "generational suffixes differ", _else, 0.001, 0.2, agrees=False,
               m_range=(0.0001, 0.002)),
    )),
    # Most duplicates in Alma are a record made by hand for someone the SIS also loads; two
    # SIS-loaded records of one person are rarer (the SIS keeps its own people apart).
    _Comparison("account_type", "account_type", (
        _Level("null", "", _null("sis"), 1, 1),
        _Level("both_sis", "", _sql("sis_l AND sis_r"), 0.2, 0.7),
        _Level("else", "", _else, 0.8, 0.3),
    )),
)
"""The comparisons, their levels in order (the first that holds applies) and m/u probabilities."""
_BY_NAME = {c.name: c for c in MODEL}

BLOCKING_RULES: tuple[tuple[str, ...], ...] = (
    ("emails",), ("ids",), ("phones",), ("email_users",),
    ("addresses", "ln_parts"), ("addresses", "fn"), ("addresses", "birth_date"),
    ("birth_date", "fn"), ("birth_date", "ln_parts"), ("birth_date", "name_key"),
    ("fn_sound", "ln_sound", "birth_year"), ("full_name",),
)
"""Candidate pairs: records equal on all columns of a rule (list columns: share an element)."""
_ARRAYS = frozenset({"emails", "ids", "phones", "email_users", "addresses", "ln_parts", "ln_sound"})
_CAPPED = ("emails", "ids", "phones", "email_users", "addresses")


def linkage_settings(n_records: int, model: dict[tuple[str, str], tuple[float, float]] | None = None,
                     blocking: Iterable[tuple[str, ...]] = BLOCKING_RULES) -> Any:
    """The splink settings of the model for a table of ``n_records`` records.

    Args:
        n_records: Number of records; sets the prior (see the module docstring).
        model: Learnt ``(comparison, level) -> (m, u)`` to use instead of the fixed values.
        blocking: The blocking rules (default :data:`BLOCKING_RULES`).

    Returns:
        A ``splink.SettingsCreator`` usable with any splink backend.
    """
    import splink.comparison_library as cll
    from splink import SettingsCreator, block_on

    comparisons = []
    for comp in MODEL:
        levels = []
        for i, level in enumerate(comp.levels):
            creator = level.make()  # the first level of each comparison is its null level
            if i == 0:
                creator = creator.configure(is_null_level=True)
            else:
                m, u = (model or {}).get((comp.name, level.key), (level.m, level.u))
                creator = creator.configure(m_probability=m, u_probability=u)
                if level.tf:
                    creator = creator.configure(tf_adjustment_column=level.tf, tf_adjustment_weight=1.0)
            levels.append(creator)
        comparisons.append(cll.CustomComparison(levels, output_column_name=comp.name))
    rules = [block_on(*cols, arrays_to_explode=[c for c in cols if c in _ARRAYS] or None) for cols in blocking]
    prior = min(0.5, 2 * DUPLICATE_RATE / max(1, n_records - 1))
    return SettingsCreator(
        link_type="dedupe_only", unique_id_column_name="unique_id", comparisons=comparisons,
        blocking_rules_to_generate_predictions=rules, probability_two_random_records_match=prior,
        retain_matching_columns=True, retain_intermediate_calculation_columns=False,
    )


# ---------------------------------------------------------------------------------------------
# Preparing the records

_INPUT_COLUMNS = ("primary_id", "first_name", "middle_name", "last_name", "birth_date", "emails", "phone",
                  "identifier_values", "line1", "postal_code", "account_type")
_OPTIONAL_COLUMNS = {"pref_first_name": "", "phones": "", "addresses": ""}
LINKAGE_COLUMNS = frozenset({*_INPUT_COLUMNS, *_OPTIONAL_COLUMNS, *DISPLAY_COLUMNS, "in_sis_extract"})
"""The patron-table columns :func:`find_duplicates` reads (others are not needed)."""
_RECORDS = "almatools_dup_records"


def _flat(values: pd.Series) -> tuple[pa.Array, pa.Array]:
    """The ``;``-joined values of a column as (row position, value), empty values left out."""
    arr = pa.array(values.astype("string").fillna(""))
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    lists = pc.split_pattern(arr, ";")
    flat, rows = pc.list_flatten(lists), pc.list_parent_indices(lists)
    keep = pc.not_equal(flat, "")
    return rows.filter(keep).cast(pa.int64()), flat.filter(keep)


def _sound(word: str) -> str:
    """A phonetic key of a folded name word (Metaphone: Thompson and Tomson agree)."""
    return jellyfish.metaphone(word) if word else ""


def _near(forms: Iterable[str]) -> set[str]:
    """Each form of 4 letters or more with one letter deleted: two forms one edit apart share one."""
    return {f[:i] + f[i + 1:] for f in forms if len(f) >= 4 for i in range(len(f))} | {f for f in forms if len(f) >= 4}


def _name_table(values: pd.Series, kind: str) -> tuple[np.ndarray, pa.Table]:
    """Codes of a name column (one per row) and a table of what each distinct name becomes."""
    codes, uniques = pd.factorize(values.astype("string").fillna(""), sort=False)
    names = [str(u) for u in uniques]
    if kind == "last":
        parts = [list(surname_parts(n)) for n in names]
        table = pa.table({
            "code": pa.array(range(len(names)), pa.int64()),
            "ln": [surname_key(n) or None for n in names],
            "ln_parts": pa.array([p or None for p in parts], pa.list_(pa.string())),
            "ln_sound": pa.array([sorted({_sound(w) for w in p} - {""}) or None for p in parts],
                                 pa.list_(pa.string())),
            "suffix": [name_suffix(n) or None for n in names],
        })
    else:
        given = [given_name(n) for n in names]
        table = pa.table({
            "code": pa.array(range(len(names)), pa.int64()),
            "g": [g or None for g in given],
            "key": ["".join(given_tokens(n)) or None for n in names],  # every word: first and last name swapped
            "forms": pa.array([sorted(name_forms(g)) or None if len(g) > 1 else None for g in given],
                              pa.list_(pa.string())),
            # words of the name that can be a given name: the first name's later words, every middle name
            "words": pa.array([[w for w in given_tokens(n)[1 if kind == "first" else 0:] if len(w) > 1] or None
                               for n in names], pa.list_(pa.string())),
            "sound": [_sound(g) if len(g) > 1 else None for g in given],
            "near": pa.array([sorted(_near(name_forms(g))) or None if len(g) > 1 else None for g in given],
                             pa.list_(pa.string())),
            "suffix": [name_suffix(n) or None for n in names],
        })
    return codes.astype("int64"), table


def _with_rare_parts(codes: np.ndarray, table: pa.Table, most: int) -> pa.Table:
    """Add ``ln_rare``: the surname words that at most ``most`` records hold (Wickcroft, not Garcia), so a
    shared one is strong evidence (Emily Wickcroft and Emily Wickcroft Miller)."""
    per_name = np.bincount(codes, minlength=table.num_rows)
    parts = table["ln_parts"].to_pylist()
    held: dict[str, int] = {}
    for count, words in zip(per_name.tolist(), parts):
        for w in words or ():
            held[w] = held.get(w, 0) + count
    rare = [[w for w in words if held[w] <= most] or None if words else None for words in parts]
    return table.append_column("ln_rare", pa.array(rare, pa.list_(pa.string())))


def _prepare(con: duckdb.DuckDBPyConnection, users: pd.DataFrame) -> str:
    """Create the linkage table in ``con`` (see :func:`prepare_records`); return its name.

    Every value is normalised by :mod:`almatools.normalise` (names once per distinct spelling, contact
    values by its column forms); DuckDB then gathers each record's lists and drops placeholder keys.
    """
    n = len(users)
    col = {c: users[c] if c in users.columns else pd.Series([d] * n, dtype="string")
           for c, d in {**{c: "" for c in _INPUT_COLUMNS}, **_OPTIONAL_COLUMNS}.items()}
    rows: dict[str, Any] = {"unique_id": np.arange(n, dtype="int64")}
    names = {}
    for column, kind in (("first_name", "first"), ("pref_first_name", "first"), ("middle_name", "middle"),
                         ("last_name", "last")):
        rows[column], names[column] = _name_table(col[column], kind)
    names["last_name"] = _with_rare_parts(rows["last_name"], names["last_name"], max(5, n // 10_000))
    birth = col["birth_date"].astype("string").fillna("")
    is_date = birth.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).to_numpy(dtype=bool)
    rows["birth_date"] = pa.array(birth.to_numpy(dtype=object), pa.string(), mask=~is_date)
    account = col["account_type"].astype("string").fillna("").str.strip().str.upper().to_numpy(dtype=object)
    external, internal = account == "EXTERNAL", account == "INTERNAL"
    rows["sis"] = pa.array(external, pa.bool_(), mask=~(external | internal))
    in_extract = (users["in_sis_extract"].fillna(False).astype(bool).to_numpy() if "in_sis_extract" in users.columns
                  else np.zeros(n, dtype=bool))
    # A live SIS identity: a record the SIS still sends (known only when the extract was given).
    rows["live_sis"] = in_extract & external
    row_table = pa.table(rows)

    flat: dict[str, tuple[pa.Array, pa.Array]] = {}
    r, v = _flat(col["emails"])
    valid = is_email_column(v)
    r, v = r.filter(valid), email_key_column(v.filter(valid))
    flat["emails"] = (r, v)
    users_ = email_user_column(v)
    letters = pc.replace_substring_regex(users_, "[^a-z]", "")
    # user names at academic domains are assigned (slee6@…): the same name elsewhere is someone else
    personal = pc.and_(pc.greater_equal(pc.utf8_length(users_), 5), pc.invert(is_academic_column(v)))
    flat["email_users"] = (r.filter(personal), users_.filter(personal))
    flat["email_names"] = (r, letters)
    r, v = _flat(col["phones"] + ";" + col["phone"].astype("string").fillna(""))
    v = phone_key_column(v)
    flat["phones"] = (r, v)
    r, v = _flat(col["identifier_values"])
    v = identifier_loose_column(v)
    keep = pc.greater_equal(pc.utf8_length(v), 4)
    flat["ids"] = (r.filter(keep), v.filter(keep))
    r, v = _flat(col["addresses"])
    parts = pc.split_pattern(v, "|", max_splits=1)
    keys = address_key_column(pc.list_element(parts, 0),
                              pc.fill_null(pc.list_element(parts, 1) if len(v) else v, ""))
    own = address_key_column(col["line1"], col["postal_code"])
    flat["addresses"] = (pa.concat_arrays([r, pa.array(np.arange(n, dtype="int64"))]), pa.concat_arrays([keys, own]))

    registered = ["__dup_rows"]
    con.register("__dup_rows", row_table)
    for column, table in names.items():
        con.register(f"__dup_{column}", table)
        registered.append(f"__dup_{column}")
    for name, (r, v) in flat.items():
        con.register(f"__dup_flat_{name}", pa.table({"r": r, "v": v}))
        registered.append(f"__dup_flat_{name}")
    cap = int(MAX_KEY_RECORDS)

    def gathered(name: str, *, capped: bool = True, agg: str = "list_sort(list_distinct(list(v)))") -> str:
        crowded = (f" AND v NOT IN (SELECT v FROM __dup_flat_{name} GROUP BY v HAVING count(DISTINCT r) > {cap})"
                   if capped else "")
        return f"(SELECT r, {agg} AS {name} FROM __dup_flat_{name} WHERE v <> ''{crowded} GROUP BY r)"

    try:
        con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {_RECORDS} AS
        WITH named AS (
            SELECT w.unique_id, f.g AS fn, f.key AS fn_key, l.ln, m.g AS mn,
                   coalesce(l.suffix, f.suffix, m.suffix, '') AS suffix,
                   CASE WHEN f.forms IS NOT NULL OR p.forms IS NOT NULL THEN
                       list_sort(list_distinct(list_concat(coalesce(f.forms, []), coalesce(p.forms, [])))) END
                       AS fn_forms,
                   nullif(list_sort(list_distinct(list_concat(coalesce(f.words, []), coalesce(m.words, [])))), [])
                       AS middles,
                   CASE WHEN f.near IS NOT NULL OR p.near IS NOT NULL THEN
                       list_distinct(list_concat(coalesce(f.near, []), coalesce(p.near, []))) END AS fn_near,
                   l.ln_parts, l.ln_rare, f.sound AS fn_sound, l.ln_sound,
                   CASE WHEN f.g IS NOT NULL AND l.ln IS NOT NULL THEN least(f.g, l.ln) || '|' || greatest(f.g, l.ln)
                   END AS name_key,
                   CASE WHEN length(f.g) > 1 AND l.ln IS NOT NULL THEN f.g || '|' || l.ln END AS full_name,
                   w.birth_date, substr(w.birth_date, 1, 4) AS birth_year, w.sis, w.live_sis
            FROM __dup_rows w
            LEFT JOIN __dup_first_name f ON f.code = w.first_name
            LEFT JOIN __dup_pref_first_name p ON p.code = w.pref_first_name
            LEFT JOIN __dup_middle_name m ON m.code = w.middle_name
            LEFT JOIN __dup_last_name l ON l.code = w.last_name
        ), crowded_names AS (
            SELECT full_name FROM named WHERE full_name IS NOT NULL GROUP BY full_name
            HAVING count(*) > {int(MAX_NAME_RECORDS)}
        )
        SELECT n.* REPLACE (CASE WHEN n.full_name IN (SELECT full_name FROM crowded_names) THEN NULL
                                 ELSE n.full_name END AS full_name),

               e.emails, e.emails[1] AS email1,
               -- a user name that is only the person's name (fangli@, lifang@, fli@) says no more than the name
               nullif(list_filter(u.email_users, lambda x: x NOT IN (
                   coalesce(n.fn || n.ln, ''), coalesce(n.ln || n.fn, ''), coalesce(substr(n.fn, 1, 1) || n.ln, ''),
                   coalesce(n.fn || substr(n.ln, 1, 1), ''), coalesce(n.ln || substr(n.fn, 1, 1), ''),
                   coalesce(n.fn_key || n.ln, ''), coalesce(n.ln || n.fn_key, ''), coalesce(n.fn_key, ''),
                   coalesce(n.fn, ''), coalesce(n.ln, ''))), [])
                   AS email_users,
               coalesce(en.email_names, '') AS email_names, ph.phones, a.addresses, i.ids
        FROM named n
        LEFT JOIN {gathered("emails")} e ON e.r = n.unique_id
        LEFT JOIN {gathered("email_users")} u ON u.r = n.unique_id
        LEFT JOIN {gathered("email_names", capped=False, agg="string_agg(v, ' ')")} en ON en.r = n.unique_id
        LEFT JOIN {gathered("phones")} ph ON ph.r = n.unique_id
        LEFT JOIN {gathered("addresses")} a ON a.r = n.unique_id
        LEFT JOIN {gathered("ids")} i ON i.r = n.unique_id
        ORDER BY n.unique_id
        """)
    finally:
        for name in registered:
            con.unregister(name)
    return _RECORDS


def _check_columns(users: pd.DataFrame) -> None:
    missing = {*_INPUT_COLUMNS, *DISPLAY_COLUMNS} - set(users.columns)
    if missing:
        raise ValueError(f"the patron table lacks the columns {sorted(missing)}")


def prepare_records(users: pd.DataFrame) -> pd.DataFrame:
    """The linkage table: the normalised fields of each record that the model compares.

    Args:
        users: The patron table (:func:`almatools.quality.frame.users_frame`).

    Returns:
        One row per record, in the order of ``users``: ``unique_id`` (the row position), ``fn`` (the
        folded given name), ``ln`` (surname key), ``mn``, ``suffix``, ``fn_forms`` (given and preferred
        names with the formal names they are nicknames of), ``middles`` (later given names), ``ln_parts``,
        ``fn_sound``/``ln_sound`` (phonetic keys), ``name_key``, ``full_name``, ``birth_date``,
        ``birth_year``, ``emails``, ``email_users``, ``email_names``, ``phones``, ``addresses``,
        ``ids``, ``sis`` and ``live_sis`` (in the current SIS extract, and SIS-managed).
    """
    _check_columns(users)
    with _connect() as con:
        return con.sql(f"SELECT * FROM {_prepare(con, users.reset_index(drop=True))} ORDER BY unique_id").df()


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class DuplicateResult:
    """What :func:`find_duplicates` found.

    Attributes:
        pairs: The *likely* pairs: ``primary_id_l``, ``primary_id_r``, ``match_probability``,
            ``evidence`` (what agreed, then what differed, in words) and ``cluster_id``; sorted by
            cluster and descending probability.
        clusters: One row per record in a cluster of two or more: ``cluster_id``, ``primary_id``
            and the display columns ``first_name``, ``last_name``, ``user_group``,
            ``account_type``, ``birth_date``, ``email``.
        possible: The *possible* pairs for review: ``primary_id_l``, ``primary_id_r``,
            ``match_probability``, ``evidence`` and ``reason`` (why it is not likely).
        timings: Seconds per step.
        threshold: The likely tier's threshold.
        model: The m/u values used, ``{"comparison/level": [m, u]}``, and ``"trained"`` (bool).
    """

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    possible: pd.DataFrame = field(default_factory=lambda: _pairs_frame([], "reason"))
    timings: dict[str, float] = field(default_factory=dict)
    threshold: float = DEFAULT_THRESHOLD
    model: dict[str, Any] = field(default_factory=dict)

    def linked_pairs(self) -> set[frozenset[str]]:
        """Every pair of records that share a cluster (the transitive closure of :attr:`pairs`)."""
        out: set[frozenset[str]] = set()
        for ids in self.clusters.groupby("cluster_id", sort=False)["primary_id"]:
            members = list(ids[1])
            out.update(frozenset((a, b)) for i, a in enumerate(members) for b in members[i + 1:])
        return out


def _pairs_frame(rows: list[tuple[Any, ...]], extra: str) -> pd.DataFrame:
    cols = ["primary_id_l", "primary_id_r", "match_probability", "evidence", extra]
    frame = pd.DataFrame(rows, columns=cols)
    return frame.astype({c: "string" for c in cols if c != "match_probability"} | {"match_probability": "float64"})


class _Timer:
    def __init__(self, progress: bool) -> None:
        self.timings: dict[str, float] = {}
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=4, desc="Duplicates", unit="step")  # prepare, train, predict, tiers
        self.start = time.perf_counter()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        yield
        self.timings[name] = round(time.perf_counter() - t, 3)
        logger.debug("duplicates: %s took %.2f s", name, self.timings[name])
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> dict[str, float]:
        self.timings["total"] = round(time.perf_counter() - self.start, 3)
        if self.bar is not None:
            self.bar.update(self.bar.total - self.bar.n)  # steps with nothing to do (one record) count as done
            self.bar.close()
        return self.timings


def _evidence(levels: dict[str, _Level], left: dict[str, str], right: dict[str, str]) -> str:
    """The evidence of a scored pair in words: what agreed, then what differed."""
    agreed, differed = [], []
    for comp in MODEL:
        level = levels[comp.name]
        if level.phrase:
            text = level.phrase.replace("{l}", left[comp.shown]).replace("{r}", right[comp.shown])
            (agreed if level.agrees else differed).append(text)
    return "; ".join(agreed + differed)


# ---------------------------------------------------------------------------------------------
# Tiers: what keeps a scored pair out of the likely tier

_STRONG = ("email", "exact"), ("identifier", "exact"), ("phone", "exact"), ("last_name", "in_email")
_NEVER = "never"


def _tier_reason(lv: dict[str, str], live_both: bool) -> str:
    """Why a pair cannot be *likely* ("" when nothing stops it; :data:`_NEVER` when it is not even possible).

    ``lv``: comparison name -> level key of the pair.
    """
    if lv["suffix"] == "differs" or lv["birth_date"] == "far":
        return _NEVER  # Jr and Sr; a parent and a child
    personal = lv["email"] == "exact" or lv["identifier"] == "exact"  # what a household does not share
    born = lv["birth_date"] in ("exact", "swap", "typo")
    if lv["first_name"] == "differs":
        # twins, spouses, siblings, a family email: different first names are two people, unless the
        # birth date and a personal email or identifier say otherwise (a nickname no table knows)
        return "the first names differ" if born and personal else _NEVER
    strong = personal or lv["phone"] == "exact" or lv["last_name"] in ("in_email", "in_middle")
    if lv["birth_date"] == "differs":
        return "the birth dates differ"
    if lv["last_name"] in ("differs", "changed") and not (strong or lv["address"] == "exact"
                                                          or (lv["middle_name"] == "exact" and born)):
        return "the surname differs and nothing but the name and birth date agrees"
    agree = [c for c in ("birth_date", "email", "phone", "address", "identifier") if lv[c] not in ("null", "else")]
    if lv["first_name"] in ("null", "initial", "initials") and not (
            strong or (born and (lv["address"] == "exact" or lv["middle_name"] == "exact"))):
        return "only an initial or no first name" if agree else _NEVER
    if not agree:
        return "only the name agrees"
    if lv["first_name"] in ("contained", "moved", "similar", "typo_short") and not (personal or born):
        return "the first names are only alike"  # siblings: Hyun and Dong-hyun
    if lv["middle_name"] == "differs" and not personal:
        return "the middle names differ"
    if lv["suffix"] == "one" and not (personal or born):
        return "a generational suffix on one record only"
    if live_both:
        return "two live SIS records (the SIS sends both)"
    return ""


def _conflict(lv: dict[str, str]) -> str:
    """Why two records cannot be one person ("" when they can), checked between every two members of a
    cluster: ``"first"`` (first names differ), ``"birth"`` or ``"suffix"``.

    Different first names or birth dates are a conflict unless the two records share a personal email
    or an identifier themselves (then the cluster is not a chain through a weak link: a preferred
    name, or a birth date typed wrong).
    """
    if lv["suffix"] == "differs":
        return "suffix"
    if lv["birth_date"] == "far":
        return "birth"
    if lv["email"] == "exact" or lv["identifier"] == "exact":
        return ""
    if lv["first_name"] == "differs":
        return "first"
    return "birth" if lv["birth_date"] == "differs" else ""


# ---------------------------------------------------------------------------------------------
# Scoring with splink


def spark_session(master: str | None = None, **conf: str) -> Any:
    """A Spark session able to run the model: splink's similarity functions (Jaro-Winkler,
    Damerau-Levenshtein) are on its class path. Needs the ``spark`` extra and Java 17.

    Args:
        master: The Spark master, e.g. ``"local[4]"`` (default: Spark's, or the cluster's).
        **conf: Further Spark settings, e.g. ``{"spark.sql.shuffle.partitions": "64"}``.

    Returns:
        The active ``pyspark.sql.SparkSession`` if one exists (it must then have been started with
        ``spark.jars`` naming ``splink.backends.spark.similarity_jar_location()``), else a new one.
    """
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    builder = SparkSession.builder.appName("almatools-duplicates").config("spark.jars", similarity_jar_location())
    if master:
        builder = builder.master(master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


class _Scorer:
    """One splink database API over the prepared table; scores candidate pairs, learns weights."""

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str, n: int, backend: str, spark: Any) -> None:
        self.n, self.con, self.table = n, con, table
        if backend == "duckdb":
            from splink import DuckDBAPI

            self.api = DuckDBAPI(connection=con)
            self.records = self.api.register(table)
        else:
            from splink import SparkAPI

            spark = spark if spark is not None else spark_session()
            # splink breaks long lineages with checkpoints when it can, else it keeps tables in memory
            lineage = None if spark.sparkContext.getCheckpointDir() else "persist"
            self.api = SparkAPI(spark_session=spark, break_lineage_method=lineage)
            # Arrow both ways: PySpark's pandas conversion does not support pandas 3 yet
            arrow = con.sql(f"SELECT * FROM {table} ORDER BY unique_id").to_arrow_table()
            self.records = self.api.register(arrow, table_name=f"almatools_records_{id(arrow):x}")

    def linker(self, model: dict[tuple[str, str], tuple[float, float]] | None,
               blocking: Iterable[tuple[str, ...]] = BLOCKING_RULES) -> Any:
        from splink import Linker

        return Linker(self.records, linkage_settings(self.n, model, blocking), log_level=None)

    def train(self) -> dict[tuple[str, str], tuple[float, float]]:
        """u by random sampling, m by EM on two blocking passes; each value clamped to its level's bounds."""
        from splink import block_on

        linker = self.linker(None)
        linker.training.estimate_u_using_random_sampling(max_pairs=U_SAMPLE_PAIRS, seed=1)
        for cols in (("birth_date", "ln"), ("email1",)):
            rule = block_on(*cols)
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, fix_u_probabilities=True, record_sample_proportion=1.0)
        learnt: dict[tuple[str, str], tuple[float, float]] = {}
        settings = linker._settings_obj  # noqa: SLF001 - splink keeps trained values here
        for comp, trained in zip(MODEL, settings.comparisons):
            levels = [lv for lv in trained.comparison_levels if not lv.is_null_level]
            for level, got in zip(comp.levels[1:], levels):
                (m_lo, m_hi), (u_lo, u_hi) = level.bounds()
                m = got.m_probability if _finite(got.m_probability) else level.m
                u = got.u_probability if _finite(got.u_probability) else level.u
                learnt[(comp.name, level.key)] = (min(max(m, m_lo), m_hi), min(max(u, u_lo), u_hi))
        return learnt

    def predict(self, model: dict[tuple[str, str], tuple[float, float]] | None, threshold: float,
                blocking: Iterable[tuple[str, ...]] = BLOCKING_RULES) -> pd.DataFrame:
        linker = self.linker(model, blocking)
        predictions = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
        return predictions.as_pyarrow_table().to_pandas()

    def score_within(self, groups: list[list[int]], model: dict[tuple[str, str], tuple[float, float]] | None
                     ) -> tuple[pd.DataFrame, dict[int, frozenset[str]]]:
        """Every pair of records within each group (by ``unique_id``), scored; and each member's name forms."""
        from splink import Linker, block_on

        rows = pa.table({"unique_id": pa.array([x for g in groups for x in g], pa.int64()),
                         "grp": pa.array([i for i, g in enumerate(groups) for _ in g], pa.int64())})
        self.con.register("__almatools_groups", rows)
        try:
            subset = self.con.sql(f"SELECT r.*, g.grp FROM {self.table} r JOIN __almatools_groups g USING (unique_id)"
                                  ).to_arrow_table()
        finally:
            self.con.unregister("__almatools_groups")
        settings = linkage_settings(self.n, model, ())
        settings.blocking_rules_to_generate_predictions = [block_on("grp")]
        records = self.api.register(subset, table_name=f"almatools_groups_{id(subset):x}")
        linker = Linker(records, settings, log_level=None)
        scored = linker.inference.predict(threshold_match_probability=0.0, warning_mode="never"
                                          ).as_pyarrow_table().to_pandas()
        forms = {int(i): frozenset(f or ()) for i, f in zip(subset["unique_id"].to_pylist(),
                                                             subset["fn_forms"].to_pylist())}
        return scored, forms

    def candidates(self) -> pd.DataFrame:
        """Every pair the blocking rules compare (``unique_id_l``, ``unique_id_r``)."""
        return self.predict(None, 0.0)[["unique_id_l", "unique_id_r"]]

    def close(self) -> None:
        self.api.delete_tables_created_by_splink_from_db()


DUCKDB_MEMORY = "1GB"
"""DuckDB's memory limit for the linkage; beyond it DuckDB spills to temporary files, so a million records
stay within a few GiB."""


def _connect() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(config={"memory_limit": DUCKDB_MEMORY})


def _finite(x: Any) -> bool:
    return isinstance(x, float) and math.isfinite(x) and 0 < x < 1


def candidate_pairs(users: pd.DataFrame) -> pd.DataFrame:
    """Every pair of records the blocking rules bring together (``primary_id_l``, ``primary_id_r``).

    For measuring blocking recall: a pair not here is never scored.
    """
    _check_columns(users)
    users = users.reset_index(drop=True)
    with _connect() as con:
        scorer = _Scorer(con, _prepare(con, users), len(users), "duckdb", None)
        pairs = scorer.candidates() if len(users) > 1 else pd.DataFrame({"unique_id_l": [], "unique_id_r": []})
        scorer.close()
    pid = users["primary_id"].astype(str).to_numpy()
    return pd.DataFrame({"primary_id_l": pid[pairs["unique_id_l"].astype("int64")],
                         "primary_id_r": pid[pairs["unique_id_r"].astype("int64")]})


# ---------------------------------------------------------------------------------------------
# Clusters


class _Components:
    """Union-find over record positions."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for x in list(self.parent):
            out.setdefault(self.find(x), []).append(x)
        return list(out.values())


def _components(edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    uf = _Components()
    for a, b in edges:
        uf.union(a, b)
    return uf.groups()


def _consistent_clusters(edges: dict[tuple[int, int], float], conflicts: dict[tuple[int, int], str],
                         forms: dict[int, frozenset[str]], pinned: frozenset[tuple[int, int]] = frozenset()
                         ) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """Connected components of ``edges`` in which no two members conflict.

    A component holding a conflicting pair loses its weakest edge until none does (``pinned`` edges,
    pairs staff marked the same person, are never cut, and their two records never conflict). Two members whose
    first names differ (conflict kind ``"first"``) do not conflict when a third member's names (its
    first and preferred names, see ``forms``) agree with both: Hương Đặng, known as Jack, links a
    "Huong" record and a "Jack" record.

    Returns:
        The clusters, and the edges that were cut.
    """
    against: dict[int, set[int]] = {}
    for a, b in conflicts:
        against.setdefault(a, set()).add(b)
        against.setdefault(b, set()).add(a)

    def bridged(a: int, b: int, members: set[int]) -> bool:
        fa, fb = forms.get(a, frozenset()), forms.get(b, frozenset())
        return any(forms.get(m, frozenset()) & fa and forms.get(m, frozenset()) & fb for m in members - {a, b})

    def consistent(members: set[int]) -> bool:
        for a in members:
            for b in against.get(a, ()):
                if b in members and a < b:
                    kind = conflicts.get((a, b), "")
                    if (a, b) not in pinned and not (kind == "first" and bridged(a, b, members)):
                        return False
        return True

    cut: list[tuple[int, int]] = []
    clusters: list[list[int]] = []
    todo = _components(edges)
    while todo:
        group = todo.pop()
        members = set(group)
        if consistent(members):
            clusters.append(group)
            continue
        inner = {e: p for e, p in edges.items() if e[0] in members}
        cuttable = [e for e in inner if e not in pinned]
        if not cuttable:  # only staff decisions hold it together: their word stands
            clusters.append(group)
            continue
        weakest = min(cuttable, key=lambda e: (inner[e], e))
        del edges[weakest]
        cut.append(weakest)
        del inner[weakest]
        todo.extend(_components(inner) + [[m] for m in members - {x for e in inner for x in e}])
    return [c for c in clusters if len(c) > 1], cut


def _cluster_id(ids: Iterable[str]) -> str:
    key = "\x1f".join(sorted(ids))
    return "C-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]


# ---------------------------------------------------------------------------------------------
# The run


def _levels(pred: pd.DataFrame) -> list[dict[str, str]]:
    """Each scored pair's level key per comparison."""
    gammas = {c.name: pred[f"gamma_{c.name}"].astype("int64").tolist() for c in MODEL}
    return [{c.name: c.level(gammas[c.name][i]).key for c in MODEL} for i in range(len(pred))]


def find_duplicates(users: pd.DataFrame, *, backend: str = "duckdb", threshold: float = DEFAULT_THRESHOLD,
                    possible_threshold: float = POSSIBLE_THRESHOLD, progress: bool = False, spark: Any = None,
                    train: bool | None = None, decisions: Any = None) -> DuplicateResult:
    """Find the records that belong to one person.

    Args:
        users: The patron table (:func:`almatools.quality.frame.users_frame`): one row per record,
            with at least ``primary_id``, the name parts, ``birth_date``, ``emails``, ``phone``,
            ``identifier_values``, ``line1``, ``postal_code``, ``account_type`` and the display
            columns (``pref_first_name``, ``phones``, ``addresses`` and ``in_sis_extract``, a bool
            telling which records the current SIS extract holds, are used when present).
        backend: ``"duckdb"`` (embedded, the default) or ``"spark"`` (needs the ``spark`` extra,
            ``pip install almatools[spark]``, and Java 17).
        threshold: The likely tier: pairs whose match probability is at least this (0 < threshold < 1).
        possible_threshold: The possible tier's lower bound (at most ``threshold``).
        progress: Show a progress bar over the steps.
        spark: A ``pyspark.sql.SparkSession`` for ``backend="spark"`` (default: the active or a
            new local session).
        train: Learn the weights from ``users`` (default: when there are at least
            :data:`MIN_TRAIN_RECORDS` records); else the fixed values.
        decisions: Staff decisions on pairs (:class:`almatools.quality.review.PairDecisions`).

    Returns:
        The likely pairs with their probability and evidence, the clusters, and the possible pairs.

    Raises:
        ValueError: ``backend`` is unknown, a threshold is out of range, or ``users`` lacks a column.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
    if not 0 < possible_threshold <= threshold:
        raise ValueError(f"possible_threshold must be between 0 and threshold, not {possible_threshold}")
    if backend not in ("duckdb", "spark"):
        raise ValueError(f"backend must be 'duckdb' or 'spark', not {backend!r}")
    _check_columns(users)
    timer = _Timer(progress)
    if not isinstance(users.index, pd.RangeIndex) or users.index.start != 0 or users.index.step != 1:
        users = users.reset_index(drop=True)
    train = len(users) >= MIN_TRAIN_RECORDS if train is None else train
    model: dict[tuple[str, str], tuple[float, float]] | None = None
    with _connect() as con:
        with timer.step("prepare"):
            table = _prepare(con, users)
            live = con.sql(f"SELECT live_sis FROM {table} ORDER BY unique_id").fetchnumpy()["live_sis"]
        if len(users) > 1:
            with timer.step("train"):
                if train:
                    # always on DuckDB (the table is there already), so both backends score with one model
                    trainer = _Scorer(con, table, len(users), "duckdb", None)
                    try:
                        model = trainer.train()
                    except Exception as err:  # noqa: BLE001 - training is an improvement, never a failure
                        logger.warning("duplicates: learning the weights failed (%s); using the fixed values", err)
                        model = None
                    finally:
                        trainer.close()
            scorer = _Scorer(con, table, len(users), backend, spark)
            with timer.step("predict"):
                pred = scorer.predict(model, possible_threshold)
            with timer.step("tiers"):
                result = _tiers(users, pred, live, threshold, decisions, lambda g: scorer.score_within(g, model))
            scorer.close()
        else:
            pred = pd.DataFrame({"unique_id_l": [], "unique_id_r": [], "match_probability": [],
                                 **{f"gamma_{c.name}": [] for c in MODEL}})
            with timer.step("tiers"):
                result = _tiers(users, pred, live, threshold, decisions, None)
    result.timings = timer.close()
    result.model = {"trained": model is not None,
                    **{f"{c}/{k}": [round(m, 6), round(u, 8)] for (c, k), (m, u) in (model or {
                        (comp.name, lv.key): (lv.m, lv.u) for comp in MODEL for lv in comp.levels[1:]}).items()}}
    logger.info("duplicates: %d records, %d likely pairs, %d clusters, %d possible pairs in %.1f s", len(users),
                len(result.pairs), result.clusters["cluster_id"].nunique(), len(result.possible),
                result.timings["total"])
    return result


def _tiers(users: pd.DataFrame, pred: pd.DataFrame, live: np.ndarray, threshold: float, decisions: Any,
           score_within: Callable[[list[list[int]]], tuple[pd.DataFrame, dict[int, frozenset[str]]]] | None
           ) -> DuplicateResult:
    """Sort the scored pairs into the likely and possible tiers, apply staff decisions, make clusters.

    ``score_within`` scores every two members of the larger clusters, so that a conflict between two
    records that were never a candidate pair (linked only through a third) is seen.
    """
    left = pred["unique_id_l"].astype("int64").tolist()
    right = pred["unique_id_r"].astype("int64").tolist()
    prob = pred["match_probability"].astype("float64").tolist()
    levels = _levels(pred)
    pid = users["primary_id"].astype(str).tolist()
    decided = decisions.lookup if decisions is not None else (lambda a, b: None)

    likely: dict[tuple[int, int], float] = {}
    possible: dict[tuple[int, int], tuple[float, str]] = {}
    conflicts: dict[tuple[int, int], str] = {}
    level_of: dict[tuple[int, int], dict[str, str]] = {}
    for a, b, p, lv in zip(left, right, prob, levels):
        key = (min(a, b), max(a, b))
        level_of[key] = lv
        verdict = decided(pid[a], pid[b])
        if verdict == "different":
            conflicts[key] = "decided"
            continue
        if verdict == "same":
            likely[key] = max(p, threshold)
            continue
        if kind := _conflict(lv):
            conflicts[key] = kind
        reason = _tier_reason(lv, bool(live[a] and live[b]))
        if reason == _NEVER:
            continue
        if not reason and p >= threshold:
            likely[key] = p
        else:
            possible[key] = (p, reason or "the evidence is not strong enough to be sure")
    if decisions is not None:
        index = {p.casefold(): i for i, p in enumerate(pid)}
        for a_id, b_id in decisions.same_pairs():
            a, b = index.get(a_id.casefold()), index.get(b_id.casefold())
            if a is not None and b is not None and a != b:
                likely.setdefault((min(a, b), max(a, b)), 1.0)
        for a_id, b_id in decisions.different_pairs():
            a, b = index.get(a_id.casefold()), index.get(b_id.casefold())
            if a is not None and b is not None and a != b:
                conflicts[(min(a, b), max(a, b))] = "decided"
                likely.pop((min(a, b), max(a, b)), None)
                possible.pop((min(a, b), max(a, b)), None)

    groups = [g for g in _components(likely) if len(g) > 2]
    forms: dict[int, frozenset[str]] = {}
    if groups and score_within is not None:
        inner, forms = score_within(groups)
        for a, b, lv in zip(inner["unique_id_l"].astype("int64"), inner["unique_id_r"].astype("int64"), _levels(inner)):
            if kind := _conflict(lv):
                conflicts.setdefault((min(a, b), max(a, b)), kind)
    pinned = frozenset(k for k in likely if decided(pid[k[0]], pid[k[1]]) == "same")
    clusters, cut = _consistent_clusters(dict(likely), conflicts, forms, pinned)
    for e in cut:
        possible[e] = (likely.pop(e), "split from a cluster whose members conflict")

    involved = sorted({x for e in (*likely, *possible) for x in e})
    shown_cols = sorted({comp.shown for comp in MODEL} | {"primary_id", *DISPLAY_COLUMNS})
    rows = users.loc[involved, shown_cols].astype(object).fillna("").astype(str)
    record = dict(zip(involved, rows.to_dict("records")))

    def described(e: tuple[int, int]) -> tuple[str, str, str]:
        a, b = sorted(e, key=lambda x: record[x]["primary_id"])
        lv = level_of.get(e)
        words = (_evidence({c.name: _level(c, lv[c.name]) for c in MODEL}, record[a], record[b]) if lv
                 else "marked the same person by staff")
        if lv and decided(pid[a], pid[b]) == "same":
            words = "marked the same person by staff; " + words
        return record[a]["primary_id"], record[b]["primary_id"], words

    cluster_of = {}
    for group in clusters:
        cid = _cluster_id(pid[p] for p in group)
        cluster_of.update((p, cid) for p in group)
    pair_rows = [(*described(e)[:2], round(p, 6), described(e)[2], cluster_of[e[0]]) for e, p in likely.items()]
    pairs = _pairs_frame(pair_rows, "cluster_id").sort_values(
        ["cluster_id", "match_probability", "primary_id_l", "primary_id_r"], ascending=[True, False, True, True],
        ignore_index=True)
    poss_rows = [(*described(e)[:2], round(p, 6), described(e)[2], why) for e, (p, why) in possible.items()]
    poss = _pairs_frame(poss_rows, "reason").sort_values(
        ["match_probability", "primary_id_l", "primary_id_r"], ascending=[False, True, True], ignore_index=True)
    positions = sorted(cluster_of)
    table = pd.DataFrame({"cluster_id": [cluster_of[p] for p in positions]}, dtype="string")
    for c in ("primary_id", *DISPLAY_COLUMNS):
        table[c] = pd.array([record[p][c] for p in positions], dtype="string")
    table = table.sort_values(["cluster_id", "primary_id"], ignore_index=True)
    return DuplicateResult(pairs, table, poss, threshold=threshold)


def _level(comp: _Comparison, key: str) -> _Level:
    return next(lv for lv in comp.levels if lv.key == key)
