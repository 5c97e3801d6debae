"""The rows of the sandbox's store: a user's search columns and identifiers, the full-text match
expression, password hashes, and batched inserts in one transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import hmac
import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

SEARCH_FIELDS: tuple[str, ...] = (
    "primary_id", "first_name", "last_name", "middle_name", "email", "phone_number", "job_category",
    "identifiers", "birth_date", "user_group", "campus_code", "block_type", "id_type", "note_text",
    "note_type", "statistic_category",
)
"""The fields ``q`` can name (Alma's list, less ``fines_fees_sum``), one FTS5 column each."""
_OTHER_COLUMN = "other_info"
"""One more FTS5 column, not nameable in ``q``: the rest of the core fields (status, record and account
type, gender, title, job description, preferred names, external id), which ``general_info`` and ``ALL``
cover as "all fields"."""
GENERAL_INFO_FIELDS: tuple[str, ...] = (
    *(name for name in SEARCH_FIELDS if name not in ("email", "birth_date", "identifiers")), _OTHER_COLUMN
)
"""What ``q=general_info~…`` searches: every field except emails, birth date and identifiers."""
_COLUMNS = (*SEARCH_FIELDS, _OTHER_COLUMN)
ORDER_FIELDS: dict[str, tuple[str, str]] = {
    # (ORDER BY terms, the index that yields that order). A secondary key on primary_id keeps paging
    # stable; Alma adds it too, except with q.
    "last_name": ("last_name COLLATE NOCASE, first_name COLLATE NOCASE, pid_key", "users_by_last"),
    "first_name": ("first_name COLLATE NOCASE, pid_key", "users_by_first"),
    "primary_id": ("pid_key", "sqlite_autoindex_users_1"),
}
_SORT_LIMIT = 1000
"""Above this many matches, a page walks the order's index and probes the match set instead of sorting
every match: a page deep into 250,000 matches among a million users then takes ~0.3 s, not ~7 s. Below
it, sorting the few matches is cheaper than a walk."""
PRIMARY_ID_TYPE = "PRIMARYIDENTIFIER"
"""The ``user_id_type`` that means "the primary id only"; also the type named when a primary id is taken."""

_COUNTS = ("loans", "requests", "fees")
_BATCH = 5000
# Synthetic patrons only: API writes hash with a modest work factor; a bulk load (which may carry a
# password for each of a million users) uses one round, still salted, so loading stays fast.
_PBKDF2_ROUNDS = 10_000
_BULK_ROUNDS = 1
# Records are trees (they come from JSON), so the encoder may skip its cycle check: ~20% faster.
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
_DATE_WORD = re.compile(r"^(\d{4}-\d{2}-\d{2})Z$", re.IGNORECASE)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS users (
    pk INTEGER PRIMARY KEY,
    pid_key TEXT NOT NULL UNIQUE,
    last_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    modified TEXT NOT NULL,
    loans INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    fees REAL NOT NULL DEFAULT 0,
    pw_hash TEXT,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ids (
    pk INTEGER NOT NULL,
    key TEXT NOT NULL,
    id_type TEXT NOT NULL,
    PRIMARY KEY (pk, key, id_type)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5(
    {", ".join(_COLUMNS)}, tokenize = "unicode61 remove_diacritics 2"
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
"""
_INDEXES = {
    "users_by_last": "ON users (last_name COLLATE NOCASE, first_name COLLATE NOCASE, pid_key)",
    "users_by_first": "ON users (first_name COLLATE NOCASE, pid_key)",
    "ids_by_key": "ON ids (key)",
}
"""The secondary indexes, which bulk_load builds once at the end of a first load."""


def _fold(value: str) -> str:
    # Alma treats primary ids, identifiers and emails case-insensitively.
    return value.casefold()


def _code(field: Any) -> str:
    """The code of an Alma code field (``{"value": …, "desc": …}``), tolerating plain strings and None."""
    if isinstance(field, dict):
        field = field.get("value")
    return str(field) if field else ""


def _count(field: Any) -> float:
    """A fulfillment count as the generator writes it (``{"value": 3}``, a number, or absent)."""
    if isinstance(field, dict):
        field = field.get("value")
    return float(field) if field else 0


def _identifiers(user: dict[str, Any]) -> list[tuple[str, str]]:
    """(id_type, value) for every identifier of the user, primary id excluded."""
    return [
        (_code(item.get("id_type")), str(item["value"]))
        for item in user.get("user_identifier") or []
        if item.get("value")
    ]


def _search_row(user: dict[str, Any]) -> tuple[str, ...]:
    """The FTS5 column values of a user, in _COLUMNS order."""
    contact = user.get("contact_info") or {}
    identifiers = user.get("user_identifier") or []
    notes = user.get("user_note") or []

    def join(items: Iterable[Any]) -> str:
        return " ".join(str(item) for item in items if item)

    birth = str(user.get("birth_date") or "").rstrip("Zz")  # "1990-05-12Z": index the date, not "12z"
    return (
        str(user.get("primary_id") or ""),
        str(user.get("first_name") or ""),
        str(user.get("last_name") or ""),
        str(user.get("middle_name") or ""),
        join(email.get("email_address") for email in contact.get("email") or []),
        join(phone.get("phone_number") for phone in contact.get("phone") or []),
        _code(user.get("job_category")),
        join(item.get("value") for item in identifiers),
        birth,
        _code(user.get("user_group")),
        _code(user.get("campus_code")),
        join(_code(block.get("block_type")) for block in user.get("user_block") or []),
        join(_code(item.get("id_type")) for item in identifiers),
        join(note.get("note_text") for note in notes),
        join(_code(note.get("note_type")) for note in notes),
        join(_code(stat.get("statistic_category")) for stat in user.get("user_statistic") or []),
        join((
            _code(user.get("status")), _code(user.get("record_type")), _code(user.get("account_type")),
            _code(user.get("gender")), _code(user.get("user_title")), user.get("job_description"),
            user.get("pref_first_name"), user.get("pref_middle_name"), user.get("pref_last_name"),
            user.get("external_id"),
        )),
    )


def match_expression(clauses: Sequence[tuple[str, str]]) -> str | None:
    """The FTS5 MATCH expression for parsed ``q`` clauses, or None when no clause has a searchable word.

    Every word of a value must occur, as a word, in the named field (Alma matches by word, ignoring case).
    Spaces, ``_`` and ``,`` separate words, because clients encode spaces that way to dodge Alma's
    HTTP 400 on encoded spaces. A word with punctuation (an email, a date) becomes an FTS5 phrase, so
    ``x@y.edu`` matches the tokens x, y, edu in a row.

    Args:
        clauses: (field, value) pairs; field is one of SEARCH_FIELDS, ``general_info`` or ``ALL``.
    """
    parts = []
    for name, value in clauses:
        words = [
            _DATE_WORD.sub(r"\1", word)
            for word in re.split(r"[\s_,]+", value)
            if any(ch.isalnum() for ch in word)
        ]
        if not words:
            return None
        phrase = " AND ".join('"' + word.replace('"', '""') + '"' for word in words)
        if name == "ALL":
            parts.append(f"({phrase})")
        else:
            columns = GENERAL_INFO_FIELDS if name == "general_info" else (name,)
            parts.append(f"{{{' '.join(columns)}}} : ({phrase})")
    return " AND ".join(parts)


def _hash_password(password: str, rounds: int = _PBKDF2_ROUNDS) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds)
    return f"pbkdf2_sha256${rounds}${salt.hex()}${digest.hex()}"


def _check_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    _, rounds, salt, digest = stored.split("$")
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(rounds))
    return hmac.compare_digest(candidate.hex(), digest)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: it crawls over a million nested dicts, and a load makes no cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Transaction:
    """``with`` block that holds the store lock and wraps its statements in BEGIN … COMMIT/ROLLBACK,
    or in a savepoint when a transaction is open already (inside Store.bulk_load)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db, self._lock = db, lock
        self._nested = False

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        self._nested = self._db.in_transaction
        self._db.execute("SAVEPOINT store_write" if self._nested else "BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            if not self._nested:
                self._db.execute("ROLLBACK" if exc_type else "COMMIT")
            else:
                if exc_type:
                    self._db.execute("ROLLBACK TO store_write")
                self._db.execute("RELEASE store_write")
        finally:
            self._lock.release()


def _today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def _rows(
    pk: int,
    user: dict[str, Any],
    today: str,
    *,
    counts: Sequence[float] | None = None,
    pw_hash: str | None = None,
    rounds: int = _PBKDF2_ROUNDS,
) -> tuple[dict[str, Any], tuple[Any, ...], list[tuple[Any, ...]], tuple[Any, ...]]:
    """The record as stored and its rows for the users, ids and search tables.

    The stored record shows ``password ""`` and ``null`` counts, as Alma's GET does; the counts (taken
    from the user unless given) and the password hash (a new one for a non-empty password, else
    ``pw_hash``) go to their own columns.
    """
    record = dict(user)
    if counts is None:
        counts = [_count(record.get(name)) for name in _COUNTS]
    password = str(record.get("password") or "")
    if password:
        pw_hash = _hash_password(password, rounds)
    record.update(password="", link=None, loans=None, requests=None, fees=None)
    record.pop("pin_number", None)  # write-only in Alma: never returned
    user_row = (
        pk, _fold(str(record["primary_id"])), str(record.get("last_name") or ""),
        str(record.get("first_name") or ""), today, *counts, pw_hash,
        _to_json(record),
    )
    id_rows = [(pk, _fold(value), id_type) for id_type, value in _identifiers(record)]
    return record, user_row, id_rows, (pk, *_search_row(record))


def _insert(
    db: sqlite3.Connection,
    user_rows: list[tuple[Any, ...]],
    id_rows: list[tuple[Any, ...]],
    search_rows: list[tuple[Any, ...]],
) -> None:
    db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", user_rows)
    db.executemany("INSERT OR IGNORE INTO ids VALUES (?, ?, ?)", id_rows)
    db.executemany(
        f"INSERT INTO search (rowid, {', '.join(_COLUMNS)}) VALUES (?{', ?' * len(_COLUMNS)})",
        search_rows,
    )


def _batches(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
