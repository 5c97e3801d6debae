"""The finding rules: stale records, policy breaches and SIS mismatches, over the whole patron table at once.

:func:`evaluate` takes the patron table of the Alma users (:mod:`almatools.quality.frame`), the same
table of the SIS extract (or None), the institution's :class:`~almatools.policy.Policy` and the day
the analysis is "as of", and returns one row per finding (:data:`FINDING_COLUMNS`). Every rule is a
column expression over the table, so a million records take seconds, not minutes.

How each rule reads the records (ids compared as Alma does: case-insensitively):

* ``STALE_SIS_MISSING``: EXTERNAL, and the SIS extract has no record with its primary id.
* ``SIS_LOCAL_SAME_ID``: INTERNAL, and the SIS extract has its primary id.
* ``SIS_LOCAL_OTHER_ID``: INTERNAL, not in the extract by primary id, and the extract has the same
  person under another id. Only exact evidence counts: a shared email address; the same birth date
  and last name with the same first name (or a nickname of it, or a one-letter typo); the same birth
  date and first name with a one-letter typo in the last name; or the same birth date and first
  name with the same phone or the same street address, or with the other record's last name in one
  of its email addresses (a new surname after marriage).
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

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from almatools.policy import Policy
from almatools.quality.catalog import RULES

try:  # the given-name forms the duplicate linkage uses (Bill for William); optional here
    from almatools.quality.duplicates import NICKNAMES
except ImportError:  # pragma: no cover - only while the linkage module is missing
    NICKNAMES: dict[str, frozenset[str]] = {}

__all__ = ["FINDING_COLUMNS", "RECORD_RULES", "evaluate"]

FINDING_COLUMNS = ("rule_id", "severity", "family", "primary_id", "other_primary_id", "user_group",
                   "account_type", "field", "message", "action")
RECORD_RULES = tuple(r for r in RULES if r != "DUPLICATE")
"""The rule ids :func:`evaluate` checks (every rule of the catalogue but the duplicate linkage)."""

_EMAIL = r"[^@\s]+@(?:[^@\s.,;]+\.)+[a-z]{2,}"
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
        return _fold(self.users["primary_id"]).isin(set(_fold(self.sis["primary_id"])))

    def col(self, name: str) -> pd.Series:
        return self.users[name]

    def is_(self, column: str, value: str) -> pd.Series:
        return self.users[column] == value


def _fold(s: pd.Series) -> pd.Series:
    return s.astype("string").str.casefold()


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


def _arrow(s: pd.Series) -> pa.Array:
    """A text column as one Arrow array (nulls as ""), for the vectorised string kernels."""
    a = pa.array(s.astype("string").fillna(""))
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def _texts(a: pa.Array) -> pd.api.extensions.ExtensionArray:
    return pd.arrays.ArrowStringArray(a)


def _name_key(s: pd.Series) -> pd.api.extensions.ExtensionArray:
    """Names compared: accents and case folded, everything but letters dropped."""
    folded = pc.utf8_lower(pc.utf8_normalize(_arrow(s), "NFKD"))
    return _texts(pc.replace_substring_regex(folded, "[^a-z]", ""))


def _people(t: pd.DataFrame) -> pd.DataFrame:
    """The person keys of a patron table, for exact matching ("" where the record lacks the field)."""
    phone = _arrow(t["phone"])
    empty = pa.scalar("", phone.type)
    phone = pc.if_else(pc.greater_equal(pc.utf8_length(phone), 7), pc.utf8_slice_codeunits(phone, -10), empty)
    street = pc.replace_substring_regex(pc.utf8_lower(_arrow(t["line1"])), "[^0-9a-z]", "")
    postal = pc.replace_substring(_arrow(t["postal_code"]), " ", "")
    both = pc.and_(pc.not_equal(street, empty), pc.not_equal(postal, empty))
    address = pc.binary_join_element_wise(street, postal, pa.scalar("|", street.type))
    return pd.DataFrame({
        "first": _name_key(t["first_name"]), "last": _name_key(t["last_name"]),
        "birth": _texts(_arrow(t["birth_date"])), "phone": _texts(phone),
        "address": _texts(pc.if_else(both, address, empty)),
    })


def _email_names(s: pd.Series) -> np.ndarray:
    """The letters of each record's email user names (``jennifer.ramirez7@…`` -> ``jenniferramirez``), space-joined."""
    return np.array([" ".join(re.sub("[^a-z]", "", e.split("@")[0]) for e in v.split(";")) if v else ""
                     for v in s.astype(object).fillna("")], dtype=object)


def _one_edit(a: str, b: str) -> bool:
    """Same initial and at most one letter substituted, dropped, added, or two neighbours swapped."""
    if not a or not b or a[0] != b[0] or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) <= 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k, (x, y) in enumerate(zip(short, long_)) if x != y), len(short))
    return short[i:] == long_[i + 1:]


def _first_names_agree(a: str, b: str) -> bool:
    if a == b:
        return bool(a)
    if NICKNAMES.get(a, frozenset({a})) & NICKNAMES.get(b, frozenset({b})):
        return True
    return _one_edit(a, b)


def _join(lp: pd.DataFrame, sp: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    left = lp[lp[keys].ne("").all(axis=1)]
    right = sp[sp[keys].ne("").all(axis=1)]
    return left.merge(right, on=keys, suffixes=("_l", "_s"))


def _sis_local_other_id(c: _Ctx) -> pd.DataFrame | None:
    if c.sis is None or not len(c.sis):
        return None
    local = np.flatnonzero(c.is_("account_type", "INTERNAL") & ~c.in_sis)
    if not len(local):
        return None
    lp = _people(c.users.iloc[local]).assign(i=local)
    sp = _people(c.sis).assign(s=np.arange(len(c.sis)))
    found: list[pd.DataFrame] = []

    def add(pairs: pd.DataFrame, evidence: pd.Series | str, names_only: bool = False) -> None:
        found.append(pd.DataFrame({"i": pairs["i"].to_numpy(), "s": pairs["s"].to_numpy(), "names_only": names_only,
                                   "evidence": evidence if isinstance(evidence, str) else evidence.to_numpy()}))

    def agree(pairs: pd.DataFrame, side: str, test: Callable[[str, str], bool]) -> pd.DataFrame:
        keep = np.fromiter((test(a, b) for a, b in zip(pairs[f"{side}_l"], pairs[f"{side}_s"])), dtype=bool,
                           count=len(pairs))
        return pairs[keep]

    le = _exploded(c.users["emails"].iloc[local]).rename(columns={"value": "email"})
    le["i"] = local[le["i"].to_numpy()]
    pairs = le.merge(_exploded(c.sis["emails"]).rename(columns={"i": "s", "value": "email"}), on="email")
    add(pairs, "same email " + pairs["email"])
    add(agree(_join(lp, sp, ["birth", "last"]), "first", _first_names_agree), "same birth date and name", True)
    add(agree(_join(lp, sp, ["birth", "first"]), "last", lambda a, b: a != b and _one_edit(a, b)),
        "same birth date and first name, last name one letter apart", True)
    # A new surname after marriage, the old one still in an email address (jenniferramirez@…).
    pairs = _join(lp, sp, ["birth", "first"])
    pairs = pairs[pairs["last_l"] != pairs["last_s"]]
    mail_l = _email_names(c.users["emails"].iloc[pairs["i"].to_numpy()])
    mail_s = _email_names(c.sis["emails"].iloc[pairs["s"].to_numpy()])

    def in_mail(name: str, mail: str, own: tuple[str, str]) -> bool:
        # the record's own names are taken out first: Yang Li's yangli@… does not name Yang Yang
        for part in own:
            mail = mail.replace(part, " ") if part else mail
        return len(name) >= 3 and name in mail

    keep = np.fromiter((in_mail(b, ma, (f, a)) or in_mail(a, mb, (f, b))
                        for f, a, b, ma, mb in zip(pairs["first"], pairs["last_l"], pairs["last_s"], mail_l, mail_s)),
                       dtype=bool, count=len(pairs))
    add(pairs[keep], "same birth date and first name, the other last name in an email address", True)
    for key, what in (("phone", "phone"), ("address", "street address")):
        add(agree(_join(lp, sp, ["birth", key]), "first", _first_names_agree), f"same birth date, first name and {what}")
    f = pd.concat(found, ignore_index=True)
    pid_l = c.col("primary_id").to_numpy()[f["i"].to_numpy()]
    pid_s = c.sis["primary_id"].to_numpy()[f["s"].to_numpy()]
    f = f[np.fromiter((str(a).casefold() != str(b).casefold() for a, b in zip(pid_l, pid_s)), dtype=bool,
                      count=len(f))]
    f = f.groupby(["i", "s"], sort=True).agg(names_only=("names_only", "all"),
                                             evidence=("evidence", lambda e: "; ".join(dict.fromkeys(e)))).reset_index()
    # Name and birth date alone: not when the phones or the street addresses disagree (two people).
    mine, theirs = lp.iloc[np.searchsorted(local, f["i"].to_numpy())], sp.iloc[f["s"].to_numpy()]
    conflict = np.zeros(len(f), dtype=bool)
    for key in ("phone", "address"):
        a, b = mine[key].to_numpy(dtype=object), theirs[key].to_numpy(dtype=object)
        conflict |= (a != "") & (b != "") & (a != b)
    f = f[~(f["names_only"].to_numpy() & conflict)]
    s = c.sis.iloc[f["s"].to_numpy()]
    names = (s["first_name"].astype(object) + " " + s["last_name"].astype(object)).str.strip().to_numpy()
    msg = ("The SIS sends this person as " + s["primary_id"].astype(object).to_numpy() + " (" + names + ", "
           + s["user_group"].astype(object).to_numpy() + "): " + f["evidence"].to_numpy())
    return _hits("SIS_LOCAL_OTHER_ID", f["i"].to_numpy(), msg, other=s["primary_id"])


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


def _exploded(s: pd.Series, *, bad: str | None = None) -> pd.DataFrame:
    """``;``-joined values as (row position, value) pairs, empty values dropped (with ``bad``: only the
    values that do not fully match that regular expression)."""
    lists = pc.split_pattern(_arrow(s), ";")
    values, rows = pc.list_flatten(lists), pc.list_parent_indices(lists)
    keep = pc.not_equal(values, "")
    if bad is not None:
        keep = pc.and_(keep, pc.invert(pc.match_substring_regex(values, f"^(?:{bad})$")))
    return pd.DataFrame({"i": rows.filter(keep).to_numpy().astype("int64"), "value": _texts(values.filter(keep))})


def _widely_held(values: pd.Series, counts: pd.Series, placeholders: Iterable[str]) -> pd.Series:
    """Which shared identifier values are reported once with their count instead of pair by pair: the
    policy's placeholders (``N/A``, ``0000``… compared ignoring case, spaces and punctuation) and any value
    more than ten records hold (an institution-wide number): n records would otherwise make n² findings."""
    def fold(v: str) -> str:
        return re.sub(r"[\W_]+", "", v.casefold()) or v.casefold()
    marks = {fold(p) for p in placeholders}
    return (counts > 10) | values.map(lambda v: fold(v) in marks).astype(bool)


def _id_collision(c: _Ctx) -> pd.DataFrame:
    ids = _exploded(c.col("identifier_values")).drop_duplicates()
    counts = ids["value"].map(ids["value"].value_counts())
    shared = counts > 1
    ids, counts = ids[shared], counts[shared]
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
    "SIS_LOCAL_OTHER_ID": _sis_local_other_id, "SIS_LOCAL_SAME_ID": _sis_local_same_id,
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
            (``STALE_SIS_MISSING``, ``SIS_LOCAL_SAME_ID``, ``SIS_LOCAL_OTHER_ID``).
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
    idx = hits["idx"].to_numpy()
    out = pd.DataFrame({
        "rule_id": hits["rule_id"].to_numpy(),
        "severity": [RULES[r].severity.value for r in hits["rule_id"]],
        "family": [RULES[r].family for r in hits["rule_id"]],
        "primary_id": users["primary_id"].to_numpy()[idx],
        "other_primary_id": hits["other_primary_id"].to_numpy(),
        "user_group": users["user_group"].to_numpy()[idx],
        "account_type": users["account_type"].to_numpy()[idx],
        "field": hits["field"].to_numpy(), "message": hits["message"].to_numpy(),
        "action": [RULES[r].action for r in hits["rule_id"]],
    })
    order = {r: i for i, r in enumerate(RULES)}
    out["_o"] = out["rule_id"].map(order)
    out = out.sort_values(["_o", "primary_id", "other_primary_id", "field"], kind="stable").drop(columns="_o")
    return out.astype("string").reset_index(drop=True)
