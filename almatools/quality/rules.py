"""The finding rules: stale records, policy breaches and SIS mismatches, over the whole patron table at once.

:func:`evaluate` takes the patron table of the Alma users (:mod:`almatools.quality.frame`), the same
table of the SIS extract (or None), the institution's :class:`~almatools.policy.Policy` and the day
the analysis is "as of", and returns one row per finding (:data:`FINDING_COLUMNS`). Every rule is a
column expression over the table, so a million records take seconds, not minutes.

How each rule reads the records (ids compared as Alma does: case-insensitively):

* ``STALE_SIS_MISSING``: EXTERNAL, and the SIS extract has no record with its primary id.
* ``SIS_LOCAL_SAME_ID``: INTERNAL, and the SIS extract has its primary id.
* ``SIS_LOCAL_OTHER_ID`` is not checked here: the duplicate linkage finds it, with the same engine and
  evidence as the duplicates (:func:`almatools.quality.run.analyse`): INTERNAL, not in the extract by
  primary id, and linked (likely tier) to a record the SIS sends under another id.
* ``EXPIRED_ACTIVE``: ACTIVE (Alma's default when empty) and expired before today.
* ``NO_PURGE_DATE``: no purge date (it is not also reported as a ``MISSING_FIELD``).
* ``PURGE_PASSED``: purge date before today. ``PURGE_TOO_SOON``: purge date today or later but before
  expiry plus the policy's retention days.
* ``MISSING_FIELD``: a field of the policy's ``mandatory`` list is empty (one finding per field;
  ``email_address``: no email at all; ``email_type``: the preferred email has no type).
* ``SIS_PROFILE_MISSING`` / ``SIS_PROFILE_UNKNOWN``: EXTERNAL with an empty ``external_id`` / one that
  is not among the policy's ``sis_profiles``.
* ``LOCAL_IN_SIS_GROUP``: INTERNAL in a group the SIS loads (and, with an extract, not in it by
  primary id: that case is ``SIS_LOCAL_SAME_ID``).
* ``ID_COLLISION``: an identifier value (primary id included) that another record also holds once case
  and spaces are ignored; one finding per record and other record, except for the policy's placeholders
  (``N/A``, ``0000``…) and values more than ten records hold: one finding each, with the count.
* ``MULTI_PREFERRED_EMAIL``: more than one email marked preferred. ``BAD_EMAIL``: an address not of
  the form ``local@domain.tld``. ``BAD_ID_FORMAT``: the primary id does not match its group's
  ``id_pattern`` (groups the policy does not know are not checked).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from almatools.catalog import RULES
from almatools.normalise import EMAIL_PATTERN, ids_in, text_column
from almatools.policy import Policy

__all__ = ["FINDING_COLUMNS", "LINKAGE_RULES", "RECORD_RULES", "evaluate"]

FINDING_COLUMNS = ("rule_id", "severity", "family", "primary_id", "other_primary_id", "user_group",
                   "account_type", "field", "message", "action")
LINKAGE_RULES = ("SIS_LOCAL_OTHER_ID", "DUPLICATE")
"""The rules the duplicate linkage finds (:func:`almatools.quality.run.analyse`), not :func:`evaluate`."""
RECORD_RULES = tuple(r for r in RULES if r not in LINKAGE_RULES)
"""The rule ids :func:`evaluate` checks (every rule of the catalogue but the linkage's)."""

_EMAIL = EMAIL_PATTERN
_MANDATORY_EMPTY = {  # mandatory field -> (column that must not be empty, message when it is)
    "first_name": ("first_name", "First name is empty"),
    "last_name": ("last_name", "Last name is empty"),
    "primary_id": ("primary_id", "Primary identifier is empty"),
    "user_group": ("user_group", "User group is empty"),
    "expiry_date": ("expiry_date", "Expiry date is empty"),
    "birth_date": ("birth_date", "Birth date is empty"),
    "email_address": ("emails", "No email address"),
    "phone_number": ("phone", "No phone number"),
    "patron_type": ("patron_type", "No patron type statistical category"),
}


@dataclass
class _Ctx:
    users: pd.DataFrame
    sis: pd.DataFrame | None
    policy: Policy
    today: date

    @cached_property
    def today_s(self) -> str:
        return self.today.isoformat()

    @cached_property
    def in_sis(self) -> pd.Series:
        """Whether the SIS extract has the record's primary id (all False without an extract)."""
        if self.sis is None:
            return pd.Series(False, index=self.users.index)
        return pd.Series(ids_in(self.users["primary_id"], self.sis["primary_id"]), index=self.users.index)

    def col(self, name: str) -> pd.Series:
        return self.users[name]

    def is_(self, column: str, value: str) -> pd.Series:
        return self.users[column] == value



def _hits(rule: str, rows: object, message: object, *, field: object = "", other: object = "") -> pd.DataFrame:
    """The findings of one rule. ``rows``: a boolean mask or positions in the users table; ``message``,
    ``field`` and ``other`` (the other record's primary id): text, or one value per selected row."""
    rows = np.asarray(rows)
    idx = np.flatnonzero(rows) if rows.dtype == bool else rows.astype("int64")

    def values(v: object) -> object:
        return v if isinstance(v, str) else np.asarray(v, dtype=object)
    return pd.DataFrame({"idx": idx, "rule_id": rule, "other_primary_id": values(other), "field": values(field),
                         "message": values(message)})


def _days(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s.where(s != "", None), format="%Y-%m-%d", errors="coerce")


def _iso(s: pd.Series) -> pd.Series:
    return s.dt.strftime("%Y-%m-%d").fillna("").astype("string")


# ---------------------------------------------------------------------------------------------
# Stale and retention


def _expired_active(c: _Ctx) -> pd.DataFrame:
    exp = c.col("expiry_date")
    m = c.col("status").isin(["ACTIVE", ""]) & (exp != "") & (exp < c.today_s)
    return _hits("EXPIRED_ACTIVE", m, "Expired on " + exp[m] + " but still ACTIVE")


def _no_purge_date(c: _Ctx) -> pd.DataFrame:
    m = (c.col("purge_date") == "") & ~c.col("bad_dates").str.contains("purge_date", regex=False)
    suggest = _iso(_days(c.col("expiry_date")[m]) + pd.Timedelta(days=c.policy.retention_days))
    msg = ("No purge date; expiry plus retention would be " + suggest).where(suggest != "", "No purge date")
    return _hits("NO_PURGE_DATE", m, msg)


def _purge_passed(c: _Ctx) -> pd.DataFrame:
    purge = c.col("purge_date")
    m = (purge != "") & (purge < c.today_s)
    return _hits("PURGE_PASSED", m, "Purge date " + purge[m] + " has passed")


def _purge_too_soon(c: _Ctx) -> pd.DataFrame:
    purge, exp = c.col("purge_date"), c.col("expiry_date")
    cand = (purge >= c.today_s) & (purge != "") & (exp != "")
    keep_until = _days(exp[cand]) + pd.Timedelta(days=c.policy.retention_days)
    early = _days(purge[cand]) < keep_until
    idx = np.flatnonzero(cand)[early.to_numpy()]
    msg = ("Purge date " + purge.iloc[idx] + " is before expiry " + exp.iloc[idx] + " plus "
           + str(c.policy.retention_days) + " days (" + _iso(keep_until[early]).to_numpy() + ")")
    return _hits("PURGE_TOO_SOON", idx, msg)


def _stale_sis_missing(c: _Ctx) -> pd.DataFrame | None:
    if c.sis is None:
        return None
    m = c.is_("account_type", "EXTERNAL") & ~c.in_sis
    return _hits("STALE_SIS_MISSING", m, "SIS-managed, but the current SIS extract has no record "
                 + c.col("primary_id")[m])


# ---------------------------------------------------------------------------------------------
# SIS mismatch


def _sis_local_same_id(c: _Ctx) -> pd.DataFrame | None:
    if c.sis is None:
        return None
    m = c.is_("account_type", "INTERNAL") & c.in_sis
    return _hits("SIS_LOCAL_SAME_ID", m, "Locally managed, but the SIS extract has primary id "
                 + c.col("primary_id")[m] + ": the next SIS load rejects it as 'User is not external'")


def _texts(a: pa.Array) -> pd.api.extensions.ExtensionArray:
    return pd.arrays.ArrowStringArray(a)


# ---------------------------------------------------------------------------------------------
# Policy


def _missing_field(c: _Ctx) -> pd.DataFrame:
    parts = []
    bad = c.col("bad_dates")
    for name in c.policy.mandatory:
        if name == "purge_date":  # NO_PURGE_DATE says it, with the date to set
            continue
        if name == "email_type":
            m = (c.col("emails") != "") & (c.col("email_types") == "")
            parts.append(_hits("MISSING_FIELD", m, "The preferred email has no email type", field=name))
            continue
        column, text = _MANDATORY_EMPTY[name]
        m = c.col(column) == ""
        if name == "patron_type" and c.policy.patron_type_codes:
            # category_type is output-only and usually absent: a statistic whose code the policy names counts
            stats = _exploded(c.col("statistics"))
            named = np.zeros(len(c.users), dtype=bool)
            named[stats.loc[stats["value"].isin(sorted(c.policy.patron_type_codes)), "i"].to_numpy()] = True
            m = m & ~named
        if name in ("expiry_date", "birth_date"):
            not_date = bad.str.contains(name, regex=False)
            msg = np.where(not_date[m], f"{name} holds something that is not a date", text)
            parts.append(_hits("MISSING_FIELD", m, msg, field=name))
        else:
            parts.append(_hits("MISSING_FIELD", m, text, field=name))
    return pd.concat(parts, ignore_index=True) if parts else _hits("MISSING_FIELD", np.array([], "int64"), "")


def _sis_profile(c: _Ctx) -> pd.DataFrame:
    ext = c.is_("account_type", "EXTERNAL")
    eid = c.col("external_id")
    missing = ext & (eid == "")
    unknown = ext & (eid != "") & ~eid.isin(list(c.policy.sis_profiles))
    profiles = ", ".join(c.policy.sis_profiles)
    return pd.concat([
        _hits("SIS_PROFILE_MISSING", missing, "SIS-managed (EXTERNAL) with an empty external_id", field="external_id"),
        _hits("SIS_PROFILE_UNKNOWN", unknown, "external_id " + eid[unknown] + f" is not a SIS profile of the policy "
              f"({profiles})", field="external_id"),
    ], ignore_index=True)


def _local_in_sis_group(c: _Ctx) -> pd.DataFrame:
    group = c.col("user_group")
    m = c.is_("account_type", "INTERNAL") & group.isin(sorted(c.policy.sis_groups)) & ~c.in_sis
    tail = (", and the SIS extract has no record " + c.col("primary_id")[m]) if c.sis is not None else ""
    return _hits("LOCAL_IN_SIS_GROUP", m, "Locally managed in " + group[m] + ", a group the SIS loads" + tail,
                 field="user_group")


def _split(s: pd.Series) -> tuple[pa.Array, pa.Array]:
    """``;``-joined values as (values, their row positions), empty values dropped."""
    lists = pc.split_pattern(text_column(s), ";")
    values, rows = pc.list_flatten(lists), pc.list_parent_indices(lists)
    keep = pc.not_equal(values, "")
    return values.filter(keep), rows.filter(keep)


def _exploded(s: pd.Series, *, bad: str | None = None) -> pd.DataFrame:
    """``;``-joined values as (row position, value) pairs, empty values dropped (with ``bad``: only the
    values that do not fully match that regular expression)."""
    values, rows = _split(s)
    if bad is not None:
        keep = pc.invert(pc.match_substring_regex(values, f"^(?:{bad})$"))
        values, rows = values.filter(keep), rows.filter(keep)
    return pd.DataFrame({"i": rows.to_numpy().astype("int64"), "value": _texts(values)})


def _widely_held(values: pd.Series, counts: pd.Series, placeholders: Iterable[str]) -> pd.Series:
    """Which shared identifier values are reported once with their count instead of pair by pair: the
    policy's placeholders (``N/A``, ``0000``… compared ignoring case, spaces and punctuation) and any value
    more than ten records hold (an institution-wide number): n records would otherwise make n² findings."""
    import re

    def fold(v: str) -> str:
        return re.sub(r"[\W_]+", "", v.casefold()) or v.casefold()
    marks = {fold(p) for p in placeholders}
    return (counts > 10) | values.map(lambda v: fold(v) in marks).astype(bool)


def _shared_values(s: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """The distinct (row position, value) pairs of ``;``-joined values whose value more than one row holds,
    and how many rows hold each (by codes: a million records' identifiers are hashed once)."""
    values, rows = _split(s)
    encoded = pc.dictionary_encode(values)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype("int64")
    rows_kept = rows.to_numpy().astype("int64")
    width = len(s) + 1
    pair = np.sort(codes * width + rows_kept)
    pair = pair[np.concatenate(([True], pair[1:] != pair[:-1]))] if len(pair) else pair  # each (value, row) once
    codes, rows_kept = pair // width, pair % width
    holders = np.bincount(codes, minlength=len(encoded.dictionary))[codes]
    shared = holders > 1
    codes = codes[shared]
    ids = pd.DataFrame({"i": rows_kept[shared], "value": _texts(encoded.dictionary.take(pa.array(codes)))})
    return ids, pd.Series(holders[shared], index=ids.index)


def _id_collision(c: _Ctx) -> pd.DataFrame:
    ids, counts = _shared_values(c.col("identifier_values"))
    wide = _widely_held(ids["value"], counts, c.policy.placeholders)
    # A placeholder or a value many records hold: one finding, on the first record holding it.
    held = ids[wide.to_numpy()].groupby("value", sort=True)["i"].agg(["min", "size"]).reset_index()
    one = _hits("ID_COLLISION", held["min"].to_numpy(),
                [f"Identifier {v} (ignoring case and spaces) is held by {n:,} records: a placeholder or shared value, "
                 "reported once; give each record its own identifier" for v, n in zip(held["value"], held["size"])],
                field="identifiers")
    ids = ids[~wide.to_numpy()]
    pairs = ids.merge(ids, on="value", suffixes=("", "_o"))
    pairs = pairs[pairs["i"] != pairs["i_o"]]
    pairs = pairs.groupby(["i", "i_o"], sort=True)["value"].agg(lambda v: ", ".join(sorted(v))).reset_index()
    other = c.col("primary_id").astype(object).to_numpy()[pairs["i_o"].to_numpy()]
    msg = "Identifier " + pairs["value"] + " (ignoring case and spaces) is also held by " + other
    return pd.concat([_hits("ID_COLLISION", pairs["i"].to_numpy(), msg, field="identifiers", other=other), one],
                     ignore_index=True)


def _emails(c: _Ctx) -> pd.DataFrame:
    multi = c.col("preferred_emails") > 1
    out = [_hits("MULTI_PREFERRED_EMAIL", multi, c.col("preferred_emails")[multi].astype(str)
                 + " emails are marked preferred", field="email")]
    e = _exploded(c.col("emails"), bad=_EMAIL)
    bad = e.groupby("i", sort=True)["value"].agg(lambda v: ", ".join(v))
    out.append(_hits("BAD_EMAIL", bad.index.to_numpy(), "Malformed email address: " + bad, field="email"))
    return pd.concat(out, ignore_index=True)


def _bad_id_format(c: _Ctx) -> pd.DataFrame:
    parts = []
    for code, group in c.policy.groups.items():
        pids = c.col("primary_id")[c.is_("user_group", code)]
        bad = pids[np.fromiter((group.id_pattern.fullmatch(v) is None for v in pids.astype(object)), dtype=bool,
                               count=len(pids))]
        parts.append(_hits("BAD_ID_FORMAT", bad.index.to_numpy(), "'" + bad + f"' is not {group.id_hint} "
                           f"({code} format)", field="primary_id"))
    return pd.concat(parts, ignore_index=True) if parts else _hits("BAD_ID_FORMAT", np.array([], "int64"), "")


_CHECKS: dict[str, Callable[[_Ctx], pd.DataFrame | None]] = {
    "SIS_LOCAL_SAME_ID": _sis_local_same_id,
    "STALE_SIS_MISSING": _stale_sis_missing, "EXPIRED_ACTIVE": _expired_active, "NO_PURGE_DATE": _no_purge_date,
    "PURGE_PASSED": _purge_passed, "PURGE_TOO_SOON": _purge_too_soon, "MISSING_FIELD": _missing_field,
    "SIS_PROFILE": _sis_profile, "LOCAL_IN_SIS_GROUP": _local_in_sis_group, "ID_COLLISION": _id_collision,
    "EMAILS": _emails, "BAD_ID_FORMAT": _bad_id_format,
}


def evaluate(users: pd.DataFrame, sis: pd.DataFrame | None, policy: Policy, *, today: date | None = None,
             rules: Iterable[str] | None = None) -> pd.DataFrame:
    """Check every record against the stale, policy and SIS rules.

    Args:
        users: The patron table of the Alma users.
        sis: The patron table of the SIS extract; None skips the rules that need it
            (``STALE_SIS_MISSING``, ``SIS_LOCAL_SAME_ID``).
        policy: The institution's policy (SIS profiles, retention, mandatory fields, groups).
        today: The day the analysis is "as of" (default: today).
        rules: Only these rule ids (default: all of :data:`RECORD_RULES`).

    Returns:
        One row per finding with :data:`FINDING_COLUMNS`, ordered by rule (catalogue order) and
        primary id. Severity, family and action come from the rule catalogue.
    """
    users = users.reset_index(drop=True)
    ctx = _Ctx(users, None if sis is None else sis.reset_index(drop=True), policy, today or date.today())
    wanted = set(RECORD_RULES if rules is None else rules)
    parts = [part for part in (check(ctx) for check in _CHECKS.values()) if part is not None and len(part)]
    hits = pd.concat(parts, ignore_index=True) if parts else _hits("", np.array([], "int64"), "")
    hits = hits[hits["rule_id"].isin(wanted)]
    # A million findings are usual (a policy whose SIS profile names differ from the data's): the catalogue's
    # columns are taken by rule code and the sort is Arrow's, not one Python lookup per finding.
    catalogue = list(RULES)
    codes = pa.array(pd.Categorical(hits["rule_id"], categories=catalogue).codes.astype("int32"))

    def per_rule(values: Iterable[str]) -> pa.Array:
        return pa.array(list(values), pa.string()).take(codes)
    idx = pa.array(hits["idx"].to_numpy())
    table = pa.table({
        "rule_id": per_rule(catalogue),
        "severity": per_rule(r.severity.value for r in RULES.values()),
        "family": per_rule(r.family for r in RULES.values()),
        "primary_id": text_column(users["primary_id"]).take(idx),
        "other_primary_id": text_column(hits["other_primary_id"]),
        "user_group": text_column(users["user_group"]).take(idx),
        "account_type": text_column(users["account_type"]).take(idx),
        "field": text_column(hits["field"]), "message": text_column(hits["message"]),
        "action": per_rule(r.action for r in RULES.values()),
        "_o": codes,
    })
    order = pc.sort_indices(table, [("_o", "ascending"), ("primary_id", "ascending"),
                                    ("other_primary_id", "ascending"), ("field", "ascending")])
    out = table.take(order).drop_columns("_o").to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
    return out.astype("string")
