"""The kit's cache folder: results worth keeping between runs, keyed by what they were made from.

Two things are kept, each in its own subfolder of the cache folder:

* ``parsed/``: a parsed source file as Parquet (:mod:`almatools.sources.cache`);
* ``linkage/``: the duplicate linkage's prepared records, scored pairs and model
  (:mod:`almatools.quality.linkage_cache`).

An entry's key is a hash of everything its content depends on: the input's bytes, the settings, and a
fingerprint of the source code that makes it (so a changed kit never reads an entry an older one wrote).
Entries are written whole or not at all (a temporary name, then a rename). The folder is
``ALMATOOLS_CACHE`` (default ``$XDG_CACHE_HOME/almatools``, else ``~/.cache/almatools``; ``off`` for
none, :func:`almatools.config.cache_home`).

The entries hold patron data, so the folders are readable by their owner only (0700, files 0600), and
the least recently used entries are removed once a subfolder holds more than its limit. Removing the
folder at any time is safe: the next run parses and links again. ``almatools quality --no-cache``
and ``almatools report --no-cache`` do without it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType

__all__ = ["CacheFolder", "code_fingerprint", "file_digest"]

log = logging.getLogger(__name__)

_HASH_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def code_fingerprint(modules: Iterable[ModuleType]) -> str:
    """A hash of the source of the given modules (a package stands for every ``.py`` file in its folder)."""
    digest = hashlib.sha256()
    for module in modules:
        path = Path(module.__file__ or "")
        files = sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]
        for f in files:
            digest.update(f"{module.__name__}/{f.name}".encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


class CacheFolder:
    """One subfolder of the cache: entries (files or folders) by key, the least recently used pruned.

    Args:
        folder: The subfolder (made, owner-only, on the first write).
        max_bytes: The most its entries may take together.
    """

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"CacheFolder({str(self.folder)!r})"

    def entry(self, name: str) -> Path | None:
        """The entry's path when it exists (and marks it recently used), else None."""
        path = self.folder / name
        if not path.exists():
            return None
        try:
            os.utime(path)
        except OSError:
            pass
        return path

    def discard(self, name: str) -> None:
        """Remove an entry (one that could not be read)."""
        path = self.folder / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def write(self, name: str, make: Callable[[Path], None], *, directory: bool = False) -> Path | None:
        """Write an entry whole or not at all: ``make(tmp)`` fills a temporary file (or folder), which is
        then renamed to ``name``. Returns the entry, or None when it could not be written (logged; the
        run goes on without it)."""
        tmp: Path | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for f in (self.folder.parent, self.folder):
                os.chmod(f, 0o700)
            if directory:
                tmp = Path(tempfile.mkdtemp(dir=self.folder, prefix=".entry-"))  # made 0700
            else:
                fd, raw = tempfile.mkstemp(dir=self.folder, prefix=".entry-", suffix=".tmp")  # made 0600
                os.close(fd)
                tmp = Path(raw)
            make(tmp)
            target = self.folder / name
            if directory and target.exists():
                shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
            tmp = None
        except OSError as err:
            log.warning("the cache in %s cannot be written (%s); nothing is lost, the work is done again next time",
                        self.folder, err)
            return None
        finally:
            if tmp is not None:
                if tmp.is_dir():
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    tmp.unlink(missing_ok=True)
        self._prune(keep=target)
        return target

    def _prune(self, keep: Path) -> None:
        """Remove the least recently used entries while the folder holds more than ``max_bytes``."""
        entries = []
        for p in self.folder.iterdir():
            if p.name.startswith("."):
                continue
            try:
                files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
                entries.append((p.stat().st_mtime, sum(f.stat().st_size for f in files), p))
            except OSError:
                continue
        total = sum(size for _t, size, _p in entries)
        for _t, size, p in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            if p != keep:
                self.discard(p.name)
                total -= size

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        if not self.folder.is_dir():
            return 0
        names = [p.name for p in self.folder.iterdir()]
        for name in names:
            self.discard(name)
        return len(names)
