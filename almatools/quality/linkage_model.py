"""The linkage model: comparisons, their levels and m/u values, blocking rules, the tiers' thresholds, and
the splink settings (see :mod:`almatools.quality.duplicates` for what they mean)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

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
               _sql("(length(ln_l) >= 3 AND "
                    "instr(replace(replace(email_names_r, coalesce(fn_r, '#'), ' '), ln_r, ' '), ln_l) > 0)"
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



def _levels(pred: pd.DataFrame) -> list[dict[str, str]]:
    """Each scored pair's level key per comparison."""
    gammas = {c.name: pred[f"gamma_{c.name}"].astype("int64").tolist() for c in MODEL}
    return [{c.name: c.level(gammas[c.name][i]).key for c in MODEL} for i in range(len(pred))]


def _level(comp: _Comparison, key: str) -> _Level:
    return next(lv for lv in comp.levels if lv.key == key)

