"""The linkage's cache: the prepared records, the scored candidate pairs and the model of one input.

Preparing, training and scoring are most of a linkage run, and they depend only on the records' linkage
fields and the kit's code; the tiers (thresholds, staff decisions, clusters) are made again on every run.
A re-run on unchanged records therefore reads the prepared table and the scored pairs back from Parquet
and goes straight to the tiers. The key hashes:

* every value of the columns the preparation reads, in row order (the bytes of their Arrow buffers, or
  ``pd.util.hash_pandas_object`` for a column that is not Arrow-backed);
* the backend, whether the model was trained, and the possible tier's threshold (pairs below it are not
  kept);
* a fingerprint of the linkage's code (:mod:`almatools.normalise` and the ``linkage``/``duplicates``
  modules) and the splink and DuckDB versions.

Entries live in ``linkage/`` of the kit's cache folder (:mod:`almatools.cache`: where, permissions,
pruning), one folder each: ``records.arrow`` and ``pairs.arrow`` (Arrow IPC files, memory-mapped when
read, so a million prepared records are back at once) and ``model.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from almatools.cache import CacheFolder, code_fingerprint
from almatools.config import cache_home

__all__ = ["MAX_LINKAGE_BYTES", "CachedLinkage", "LinkageCache", "linkage_cache"]

log = logging.getLogger(__name__)

MAX_LINKAGE_BYTES = 8 << 30
"""The most the linkage entries keep together; beyond it, the least recently used go."""
Model = dict[tuple[str, str], tuple[float, float]]


@lru_cache(maxsize=1)
def _fingerprint() -> str:
    import almatools.normalise
    import almatools.quality.duplicates
    import almatools.quality.linkage_model
    import almatools.quality.linkage_prepare

    code = code_fingerprint([almatools.normalise, almatools.quality.duplicates, almatools.quality.linkage_model,
                             almatools.quality.linkage_prepare])
    return f"{code}-splink{version('splink')}-duckdb{duckdb.__version__}"


@dataclass
class CachedLinkage:
    """An entry: the prepared records (a Parquet file to load), the scored pairs, the model (None: fixed)."""

    records: Path
    pairs: pd.DataFrame
    model: Model | None


class LinkageCache:
    """Prepared records and scored pairs by input (see the module docstring).

    Args:
        folder: The kit's cache folder (entries go to its ``linkage/``).
        max_bytes: The most the entries may take together.
    """

    def __init__(self, folder: Path, *, max_bytes: int = MAX_LINKAGE_BYTES) -> None:
        self.store = CacheFolder(Path(folder) / "linkage", max_bytes)

    def __repr__(self) -> str:
        return f"LinkageCache({str(self.store.folder)!r})"

    def key(self, users: pd.DataFrame, columns: list[str], **settings: Any) -> str:
        """The entry's key: the records' values in ``columns`` (in row order), the settings, the code."""
        digest = hashlib.sha256(_fingerprint().encode())
        digest.update(json.dumps(settings, sort_keys=True).encode())
        present = [c for c in columns if c in users.columns]
        digest.update(json.dumps(present).encode())
        digest.update(str(len(users)).encode())
        for name in present:
            _digest_column(digest, users[name])
        return digest.hexdigest()[:40]

    def restore(self, con: duckdb.DuckDBPyConnection, entry: CachedLinkage, table: str) -> None:
        """Make the entry's prepared records queryable as ``table`` in ``con`` (memory-mapped, not copied)."""
        con.register(table, feather.read_table(entry.records, memory_map=True))

    def get(self, key: str) -> CachedLinkage | None:
        """The entry, or None (none, or unreadable: it is then removed)."""
        folder = self.store.entry(key)
        if folder is None:
            return None
        try:
            data = json.loads((folder / "model.json").read_text(encoding="utf-8"))
            model = None if data is None else {(c, k): (float(m), float(u)) for c, k, m, u in data}
            pairs = feather.read_table(folder / "pairs.arrow").to_pandas()
            if not (folder / "records.arrow").is_file():
                raise ValueError("records.arrow is missing")
            return CachedLinkage(folder / "records.arrow", pairs, model)
        except (OSError, KeyError, TypeError, ValueError, pa.ArrowException) as err:
            log.warning("linkage cache entry %s cannot be read (%s); the records are linked again", key, err)
            self.store.discard(key)
            return None

    def put(self, key: str, con: duckdb.DuckDBPyConnection, table: str, pairs: pd.DataFrame,
            model: Model | None) -> Path | None:
        """Store the prepared table (from ``con``), the scored pairs and the model."""
        def make(tmp: Path) -> None:
            feather.write_feather(con.sql(f"SELECT * FROM {table}").to_arrow_table(), str(tmp / "records.arrow"),
                                  compression="uncompressed")
            feather.write_feather(pa.Table.from_pandas(pairs, preserve_index=False), str(tmp / "pairs.arrow"),
                                  compression="uncompressed")
            data = None if model is None else [[c, k, m, u] for (c, k), (m, u) in model.items()]
            (tmp / "model.json").write_text(json.dumps(data), encoding="utf-8")
        try:
            return self.store.write(key, make, directory=True)
        except duckdb.Error as err:
            log.warning("the linkage cache cannot be written (%s); the records are linked again next time", err)
            return None


def _digest_column(digest: Any, column: pd.Series) -> None:
    """Feed one column's values (and where they are missing) into ``digest``.

    Text columns backed by Arrow (the patron table's) are hashed from their value lengths and bytes, so the
    digest depends on the values only, not on how the column is cut into chunks (a parsed table and the same
    table read back from the parse cache are cut differently); anything else through pandas' row hashes.
    """
    digest.update(f"{column.name}|{column.dtype}|{len(column)}|".encode())
    arrow = getattr(column.array, "__arrow_array__", None)
    chunked = arrow() if arrow is not None else None
    kind = getattr(chunked, "type", None)
    if kind is not None and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        missing, lengths, text = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
        for chunk in (chunked.chunks if isinstance(chunked, pa.ChunkedArray) else [chunked]):
            if chunk.null_count:
                nulls = pc.is_null(chunk).to_numpy(zero_copy_only=False)
            else:
                nulls = np.zeros(len(chunk), dtype=bool)
            missing.update(nulls.tobytes())
            width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
            offsets = np.frombuffer(chunk.buffers()[1], dtype=width)[chunk.offset:chunk.offset + len(chunk) + 1]
            lengths.update(np.diff(offsets).astype(np.int64).tobytes())
            if len(chunk) and chunk.buffers()[2] is not None:
                text.update(memoryview(chunk.buffers()[2])[int(offsets[0]):int(offsets[-1])])
        for part in (missing, lengths, text):
            digest.update(part.digest())
        return
    digest.update(pd.util.hash_pandas_object(column, index=False).to_numpy().tobytes())


def linkage_cache(enabled: bool = True) -> LinkageCache | None:
    """The linkage cache where ``ALMATOOLS_CACHE`` says, or None (turned off there, or ``enabled`` False)."""
    folder = cache_home() if enabled else None
    return LinkageCache(folder) if folder is not None else None
