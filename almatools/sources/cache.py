"""The parse cache: a file read once is kept as Parquet, and read back from there while it is unchanged.

A consortium's monthly review reads the same exports again and again; parsing a million users' XML takes
most of a minute, reading the same table back from Parquet a second or two. An entry is keyed by:

* the SHA-256 of the file's bytes (so a changed file, even with the same name, size and time, is parsed
  again, and a copy of an unchanged file elsewhere is found);
* the kind of file and the patron-type statistic category type the reader was told (the policy's);
* :data:`READER_VERSION` and a fingerprint of the reading code itself (every module of
  :mod:`almatools.sources`, :mod:`almatools.models` and :mod:`almatools.quality.frame`), so a kit whose
  readers changed never reads an entry an older reader wrote.

An entry holds the table and everything the load reported: the files read, notes, and every bad record's
error (they are given to ``on_error`` again, so a cached read behaves as a parse does). A file with more
than :data:`MAX_CACHED_ERRORS` bad records is not cached. Entries live in ``parsed/`` of the kit's cache
folder (:mod:`almatools.cache`: where, permissions, pruning).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from almatools.cache import CacheFolder, code_fingerprint, file_digest
from almatools.config import cache_home
from almatools.models import RecordError
from almatools.quality.frame import empty_frame

__all__ = ["MAX_CACHED_ERRORS", "MAX_PARSED_BYTES", "READER_VERSION", "CachedParse", "ParseCache", "parse_cache"]

log = logging.getLogger(__name__)

READER_VERSION = "1"
"""Bumped when reading a file gives a different table (the code fingerprint catches the rest)."""
MAX_PARSED_BYTES = 8 << 30
"""The most the parsed files keep together; beyond it, the least recently used entries go."""
MAX_CACHED_ERRORS = 10_000
"""A file with more bad records than this is parsed every time (its errors are not worth keeping)."""
_META_KEY = b"almatools"


@lru_cache(maxsize=1)
def _fingerprint() -> str:
    import almatools.models
    import almatools.quality.frame
    import almatools.sources

    return READER_VERSION + "-" + code_fingerprint([almatools.sources, almatools.models, almatools.quality.frame])


@dataclass
class CachedParse:
    """What a cache entry gives back: the table and what its load reported."""

    frame: pd.DataFrame
    files: list[str]
    notes: list[str]
    errors: list[RecordError]
    source: str = ""
    """The path the entry was parsed from: the files and errors name it (a copy elsewhere has the same key)."""


class ParseCache:
    """Parsed files as Parquet (see the module docstring).

    Args:
        folder: The kit's cache folder (entries go to its ``parsed/``).
        max_bytes: The most the entries may take together.
    """

    def __init__(self, folder: Path, *, max_bytes: int = MAX_PARSED_BYTES) -> None:
        self.store = CacheFolder(Path(folder) / "parsed", max_bytes)

    @property
    def folder(self) -> Path:
        """Where the entries are."""
        return self.store.folder

    def __repr__(self) -> str:
        return f"ParseCache({str(self.folder)!r})"

    def key(self, path: Path, kind: str, patron_type_category_type: str) -> str:
        """The entry's key for a file read as ``kind`` with the policy's patron-type category type."""
        parts = [file_digest(path), kind, patron_type_category_type, _fingerprint()]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]

    def get(self, key: str) -> CachedParse | None:
        """The entry, or None when there is none (or it cannot be read: it is then removed)."""
        path = self.store.entry(f"{key}.parquet")
        if path is None:
            return None
        try:
            table = pq.read_table(path)
            meta = json.loads((table.schema.metadata or {})[_META_KEY])
            frame = _restore(table.to_pandas())
            errors = [RecordError(e["reason"], file=e["file"], record=e["record"], field=e["field"], line=e["line"])
                      for e in meta["errors"]]
            return CachedParse(frame, list(meta["files"]), list(meta["notes"]), errors, str(meta.get("source", "")))
        except (OSError, KeyError, TypeError, ValueError, pa.ArrowException) as err:
            log.warning("parse cache entry %s cannot be read (%s); the file is parsed again", path.name, err)
            self.store.discard(path.name)
            return None

    def put(self, key: str, frame: pd.DataFrame, *, files: list[str], notes: list[str],
            errors: list[RecordError], source: str = "") -> Path | None:
        """Store an entry; None when it is not kept (too many bad records, or it cannot be written)."""
        if len(errors) > MAX_CACHED_ERRORS:
            return None
        meta = {"files": files, "notes": notes, "source": source,
                "errors": [{"reason": e.reason, "file": e.file, "record": e.record, "field": e.field, "line": e.line}
                           for e in errors]}
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()})
        return self.store.write(f"{key}.parquet", lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def _restore(frame: pd.DataFrame) -> pd.DataFrame:
    """The table with the patron table's column types (Parquet keeps them; an empty table needs help)."""
    types = empty_frame().dtypes
    if list(frame.columns) != list(types.index):
        raise ValueError("the entry's columns are not the patron table's")
    for name in frame.columns:
        if frame[name].dtype != types[name]:
            frame[name] = frame[name].astype(types[name])
    return frame


def parse_cache(enabled: bool = True) -> ParseCache | None:
    """The parse cache where ``ALMATOOLS_CACHE`` says, or None (turned off there, or ``enabled`` False)."""
    folder = cache_home() if enabled else None
    return ParseCache(folder) if folder is not None else None
