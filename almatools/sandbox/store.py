"""The sandbox's SQLite store of Alma users.

Each user is kept as the JSON object Alma's ``GET /users/{id}`` returns (compact, in one column), next to
what the API needs to find it quickly:

- ``users``: the record, its case-folded primary id (unique), names for sorting, the day it was last
  written (for ``modify_date_from``), its fulfillment counts and a salted password hash;
- ``ids``: every identifier value, case-folded, with its type (``all_unique`` and typed look-ups);
- ``search``: an FTS5 table with one column per searchable ``q`` field, and one for the other core
  fields (unicode61, diacritics removed), so Alma's word matching stays fast at a million users;
- ``meta``: a small key-value table (daily call counters, the API key a server was started with…).

One connection in WAL mode, shared by all threads behind one lock: the sandbox serves from uvicorn's
thread while tests and the CLI read from theirs. Every statement is short, so the lock is never held long.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from almatools.sandbox.store_rows import (
    _BATCH,
    _BULK_ROUNDS,
    _COUNTS,
    _INDEXES,
    _SCHEMA,
    _SORT_LIMIT,
    GENERAL_INFO_FIELDS,
    ORDER_FIELDS,
    PRIMARY_ID_TYPE,
    SEARCH_FIELDS,
    _batches,
    _check_password,
    _fold,
    _gc_paused,
    _identifiers,
    _insert,
    _rows,
    _today,
    _Transaction,
    match_expression,
)

__all__ = ["GENERAL_INFO_FIELDS", "IdentifierTaken", "ORDER_FIELDS", "PRIMARY_ID_TYPE", "SEARCH_FIELDS", "Store"]

log = logging.getLogger(__name__)

class IdentifierTaken(ValueError):
    """A primary id or identifier value is already held by a user (Alma error 401851).

    Attributes:
        id_type: the identifier type (``PRIMARYIDENTIFIER`` for a primary id).
        value: the value as it was sent.
    """

    def __init__(self, id_type: str, value: str) -> None:
        if id_type == PRIMARY_ID_TYPE:  # Alma's wording for a primary id (error_401851_primary_id_kth.xml)
            super().__init__(f"User with identifier {value} of type Primary id already exists.")
        else:  # ours: Alma's wording for other identifier types was not found in public sources
            super().__init__(f"Identifier of type {id_type} and value {value} is already taken")
        self.id_type = id_type
        self.value = value


class Store:
    """SQLite store of Alma user records, safe to share between threads.

    Args:
        path: the SQLite file; created with its schema when absent (``":memory:"`` works too).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path or ":memory:"), check_same_thread=False, isolation_level=None)
        try:
            # 16 KiB pages (for a new file) pack records of ~2 KB tighter; a 256 MiB cache holds the indexes
            # of a million users.
            for pragma in ("page_size = 16384", "journal_mode = WAL", "synchronous = NORMAL", "temp_store = MEMORY",
                           "cache_size = -262144"):
                self._db.execute(f"PRAGMA {pragma}")
            self._db.executescript(_SCHEMA)
            for name, definition in _INDEXES.items():
                self._db.execute(f"CREATE INDEX IF NOT EXISTS {name} {definition}")
        except BaseException:  # a file that is not a database: no connection left open behind the error
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"Store({str(self.path or ':memory:')!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None  # type: ignore[assignment]

    # -- bulk load ---------------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._lock)

    @contextlib.contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Make the ``insert_many`` calls of a ``with`` block one transaction, for a fast first load.

        A generator that hands over users in batches (``sink=store.insert_many``) otherwise commits
        once per batch, and every commit rewrites each index page the batch touched. Inside the block
        other threads wait for the store; if the block raises, nothing of it is kept. The block writes
        through a rollback journal instead of WAL (so the data is written once, not twice), and when
        the store starts empty the secondary indexes are dropped and built once at the end.

        Example:
            >>> with store.bulk_load():  # doctest: +SKIP
            ...     generate_institution(folder, users=1_000_000, sink=store.insert_many)
        """
        with self._lock:
            # SQLite keeps WAL if another connection has the file open; the load then goes through WAL.
            self._db.execute("PRAGMA journal_mode = DELETE")
            try:
                with self._transaction() as db:
                    first_load = db.execute("SELECT NOT EXISTS (SELECT 1 FROM users)").fetchone()[0]
                    if first_load:
                        for name in _INDEXES:
                            db.execute(f"DROP INDEX {name}")
                    yield
                    if first_load:
                        for name, definition in _INDEXES.items():
                            db.execute(f"CREATE INDEX {name} {definition}")
            finally:
                self._db.execute("PRAGMA journal_mode = WAL")

    def insert_many(self, users: Iterable[dict[str, Any]]) -> int:
        """Load full Alma user objects in one transaction (inside bulk_load: the block's), unvalidated.

        The objects are stored as given (as ``GET /users/{id}`` returns them). ``loans``, ``requests``
        and ``fees`` may carry counts (``{"value": 3}``); they are kept aside and the record shows
        ``null``, as Alma does without ``expand``. A non-empty ``password`` is stored as a salted hash.
        Identifiers are not checked for uniqueness, so a load can plant records Alma would refuse; a
        look-up by a shared identifier finds the user loaded first.

        Returns:
            How many users were stored.

        Raises:
            sqlite3.IntegrityError: a primary id (compared ignoring case) is stored already; nothing of
                this call is kept.
        """
        today = _today()
        total = 0
        with _gc_paused(), self._transaction() as db:
            next_pk = db.execute("SELECT coalesce(max(pk), 0) + 1 FROM users").fetchone()[0]
            for batch in _batches(users, _BATCH):
                user_rows, id_rows, search_rows = [], [], []
                for pk, user in enumerate(batch, next_pk):
                    _, user_row, ids, search_row = _rows(pk, user, today, rounds=_BULK_ROUNDS)
                    user_rows.append(user_row)
                    id_rows.extend(ids)
                    search_rows.append(search_row)
                _insert(db, user_rows, id_rows, search_rows)
                next_pk += len(batch)
                total += len(batch)
        log.info("loaded %d users into %s", total, self)
        return total

    # -- reads -------------------------------------------------------------------------------------

    def count(self) -> int:
        """How many users are stored."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM users").fetchone()[0]

    def _find(self, key: str, id_type: str) -> int | None:
        """The pk of the user that ``key`` names, or None (see get)."""
        folded = _fold(key)
        if id_type in ("all_unique", PRIMARY_ID_TYPE):
            row = self._db.execute("SELECT pk FROM users WHERE pid_key = ?", (folded,)).fetchone()
            if row or id_type == PRIMARY_ID_TYPE:
                return row[0] if row else None
            row = self._db.execute("SELECT pk FROM ids WHERE key = ? ORDER BY pk LIMIT 1", (folded,)).fetchone()
        else:
            row = self._db.execute(
                "SELECT pk FROM ids WHERE key = ? AND id_type = ? ORDER BY pk LIMIT 1", (folded, id_type)
            ).fetchone()
        return row[0] if row else None

    def _record(self, pk: int) -> dict[str, Any]:
        return json.loads(self._db.execute("SELECT data FROM users WHERE pk = ?", (pk,)).fetchone()[0])

    def get(self, key: str, id_type: str = "all_unique") -> dict[str, Any] | None:
        """The user record that ``key`` names, or None.

        Args:
            key: a primary id or identifier value, compared ignoring case.
            id_type: ``all_unique`` (the primary id, then any identifier), ``PRIMARYIDENTIFIER`` (the
                primary id only) or an identifier type code such as ``BARCODE``.
        """
        with self._lock:
            pk = self._find(key, id_type)
            return None if pk is None else self._record(pk)

    def fulfillment(self, primary_id: str) -> dict[str, float]:
        """The user's ``loans``, ``requests`` and ``fees`` (balance); zeros for an unknown user."""
        with self._lock:
            row = self._db.execute(
                "SELECT loans, requests, fees FROM users WHERE pid_key = ?", (_fold(primary_id),)
            ).fetchone()
        return dict(zip(_COUNTS, row or (0, 0, 0.0)))

    def check_password(self, primary_id: str, password: str) -> bool:
        """True when ``password`` is the user's password (False for an unknown user or no password)."""
        with self._lock:
            row = self._db.execute("SELECT pw_hash FROM users WHERE pid_key = ?", (_fold(primary_id),)).fetchone()
        return bool(row) and _check_password(password, row[0])

    def query(
        self,
        clauses: Sequence[tuple[str, str]] = (),
        *,
        order_by: str = "last_name",
        limit: int = 10,
        offset: int = 0,
        modified_from: str | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """One page of users and the number of all matches, as ``GET /users`` needs them.

        Args:
            clauses: parsed ``q`` clauses (see match_expression); empty for all users.
            order_by: a key of ORDER_FIELDS.
            limit: page size.
            offset: how many matches to skip.
            modified_from: ``YYYY-MM-DD``; only users written on or after that day.

        Returns:
            (total, records).
        """
        with self._lock:
            if clauses:
                expression = match_expression(clauses)
                if expression is None:
                    return 0, []
                total = self._db.execute(
                    "SELECT count(*) FROM search WHERE search MATCH ?", (expression,)
                ).fetchone()[0]
                where, params = "WHERE pk IN (SELECT rowid FROM search WHERE search MATCH ?)", [expression]
            else:
                where, params = ("WHERE modified >= ?", [modified_from]) if modified_from else ("", [])
                total = self._db.execute(f"SELECT count(*) FROM users {where}", params).fetchone()[0]
            terms, index = ORDER_FIELDS[order_by]
            hint = f"INDEXED BY {index}" if total > _SORT_LIMIT else ""
            rows = self._db.execute(
                f"SELECT data FROM users {hint} {where} ORDER BY {terms} LIMIT ? OFFSET ?", [*params, limit, offset]
            ).fetchall()
        return total, [json.loads(data) for (data,) in rows]

    # -- writes ------------------------------------------------------------------------------------

    def _check_unique(self, db: sqlite3.Connection, record: dict[str, Any], own_pk: int | None) -> None:
        """Raise IdentifierTaken unless the record's primary id and identifiers are free.

        A value is taken when another user holds it as primary id or identifier, or when two of the
        record's identifiers share it. An identifier may repeat the user's own primary id (SIS loads
        often make the university id both).
        """
        seen: set[str] = set()
        for id_type, value in [(PRIMARY_ID_TYPE, str(record["primary_id"])), *_identifiers(record)]:
            key = _fold(value)
            taken = key in seen or db.execute(
                "SELECT 1 FROM users WHERE pid_key = ? AND pk IS NOT ? "
                "UNION ALL SELECT 1 FROM ids WHERE key = ? AND pk IS NOT ? LIMIT 1",
                (key, own_pk, key, own_pk),
            ).fetchone()
            if taken:
                raise IdentifierTaken(id_type, value)
            if id_type != PRIMARY_ID_TYPE:
                seen.add(key)

    @staticmethod
    def _remove(db: sqlite3.Connection, pk: int) -> None:
        for table, column in (("users", "pk"), ("ids", "pk"), ("search", "rowid")):
            db.execute(f"DELETE FROM {table} WHERE {column} = ?", (pk,))

    def taken(self, user: dict[str, Any]) -> IdentifierTaken | None:
        """The IdentifierTaken that adding ``user`` now would raise, or None."""
        with self._lock:
            try:
                self._check_unique(self._db, user, None)
            except IdentifierTaken as err:
                return err
        return None

    def add(self, user: dict[str, Any]) -> dict[str, Any]:
        """Store a new user, already validated and completed by the API layer; return it as stored.

        A non-empty ``password`` in the record is kept as a salted hash.

        Raises:
            IdentifierTaken: its primary id or an identifier is held by another user, or repeated.
        """
        with self._transaction() as db:
            pk = db.execute("SELECT coalesce(max(pk), 0) + 1 FROM users").fetchone()[0]
            record, user_row, id_rows, search_row = _rows(pk, user, _today())
            self._check_unique(db, record, None)
            _insert(db, [user_row], id_rows, [search_row])
        return record

    def replace(self, primary_id: str, user: dict[str, Any]) -> dict[str, Any]:
        """Replace the user whose primary id is ``primary_id`` (the new record may change it).

        Fulfillment counts stay; an empty ``password`` keeps the old one (Alma's rule for PUT).

        Raises:
            KeyError: no user has that primary id.
            IdentifierTaken: the new primary id or an identifier is held by another user, or repeated.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT pk, loans, requests, fees, pw_hash FROM users WHERE pid_key = ?", (_fold(primary_id),)
            ).fetchone()
            if row is None:
                raise KeyError(primary_id)
            pk, *counts, pw_hash = row
            record, user_row, id_rows, search_row = _rows(pk, user, _today(), counts=counts, pw_hash=pw_hash)
            self._check_unique(db, record, pk)
            self._remove(db, pk)
            _insert(db, [user_row], id_rows, [search_row])
        return record

    def delete(self, primary_id: str) -> bool:
        """Delete a user fully; False when no user has that primary id."""
        with self._transaction() as db:
            pk = self._find(primary_id, PRIMARY_ID_TYPE)
            if pk is not None:
                self._remove(db, pk)
        return pk is not None

    def merge(self, from_id: str, to_id: str) -> None:
        """Merge the user FROM into the user TO, as Alma's Merge Users screen does.

        Our own design: Alma has no merge API. Fulfillment data (loan and request counts, the fee
        balance) moves to TO, then FROM is deleted as "Fully Remove". Segments are not copied.

        Args:
            from_id: primary id of the duplicate, which is deleted.
            to_id: primary id of the record that is kept.

        Raises:
            KeyError: either user is unknown.
            ValueError: both name the same user.
        """
        with self._transaction() as db:
            source, target = self._find(from_id, PRIMARY_ID_TYPE), self._find(to_id, PRIMARY_ID_TYPE)
            if source is None or target is None:
                raise KeyError(from_id if source is None else to_id)
            if source == target:
                raise ValueError("cannot merge a user into itself")
            db.execute(
                "UPDATE users SET (loans, requests, fees, modified) = "
                "(SELECT t.loans + f.loans, t.requests + f.requests, t.fees + f.fees, date('now') "
                " FROM users t, users f WHERE t.pk = ? AND f.pk = ?) WHERE pk = ?",
                (target, source, target),
            )
            self._remove(db, source)
        log.info("merged user %s into %s", from_id, to_id)

    # -- meta --------------------------------------------------------------------------------------

    def meta_get(self, name: str, default: str | None = None) -> str | None:
        """A value of the meta table, or ``default``."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else default

    def meta_set(self, name: str, value: str | int | None) -> None:
        """Set (or, with None, remove) a value of the meta table."""
        with self._lock:
            if value is None:
                self._db.execute("DELETE FROM meta WHERE name = ?", (name,))
            else:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, str(value)))

    def bump(self, name: str, by: int = 1) -> int:
        """Add ``by`` to an integer meta value (absent counts as 0) and return the new value."""
        with self._lock:
            return self._db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = CAST(value AS INTEGER) + ? "
                "RETURNING CAST(value AS INTEGER)",
                (name, str(by), by),
            ).fetchall()[0][0]
