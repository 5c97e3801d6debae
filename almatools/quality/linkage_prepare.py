"""Preparing the records for the linkage: every value normalised by :mod:`almatools.normalise`, gathered
per record in DuckDB, placeholder keys dropped."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb
import jellyfish
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from almatools.normalise import (
    address_key_column,
    email_key_column,
    email_user_column,
    given_name,
    given_tokens,
    identifier_loose_column,
    is_academic_column,
    is_email_column,
    name_forms,
    name_suffix,
    phone_key_column,
    surname_key,
    surname_parts,
)
from almatools.quality.linkage_model import DISPLAY_COLUMNS, MAX_KEY_RECORDS, MAX_NAME_RECORDS

# ---------------------------------------------------------------------------------------------
# Preparing the records

_INPUT_COLUMNS = ("primary_id", "first_name", "middle_name", "last_name", "birth_date", "emails", "phone",
                  "identifier_values", "line1", "postal_code", "account_type")
_OPTIONAL_COLUMNS = {"pref_first_name": "", "phones": "", "addresses": ""}
LINKAGE_COLUMNS = frozenset({*_INPUT_COLUMNS, *_OPTIONAL_COLUMNS, *DISPLAY_COLUMNS, "in_sis_extract"})
"""The patron-table columns :func:`find_duplicates` reads (others are not needed)."""
CACHE_KEY_COLUMNS = [*_INPUT_COLUMNS, *_OPTIONAL_COLUMNS, "in_sis_extract"]
"""The columns the prepared table is made from: the linkage cache's key hashes their values."""
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

    made: list[str] = []

    def gathered(name: str, *, capped: bool = True, agg: str = "list_sort(list_distinct(list(v)))") -> str:
        # One table per list, made on its own: gathering every list in one statement needs more memory than
        # DuckDB's limit at a million records (list aggregates do not spill).
        crowded = (f" AND v NOT IN (SELECT v FROM __dup_flat_{name} GROUP BY v HAVING count(DISTINCT r) > {cap})"
                   if capped else "")
        made.append(f"__dup_gathered_{name}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {made[-1]} AS "
                    f"SELECT r, {agg} AS {name} FROM __dup_flat_{name} WHERE v <> ''{crowded} GROUP BY r")
        return made[-1]

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
        for name in made:
            con.execute(f"DROP TABLE IF EXISTS {name}")
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



DUCKDB_MEMORY = "1GB"
"""DuckDB's memory limit for the linkage; beyond it DuckDB spills to temporary files, so a million records
stay within a few GiB."""


def _connect() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(config={"memory_limit": DUCKDB_MEMORY})


