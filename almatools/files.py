"""Writing files so that a crash never leaves half of one: the kit's atomic-write helpers."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["AppendLog", "atomic_path", "atomic_write", "fsync_dir"]


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block ends without error,
    removed when it raises. For writers that want a path (``DataFrame.to_csv``, ``zipfile.ZipFile``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` completely or not at all: a temporary file beside it, fsync, rename, fsync the folder."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


class AppendLog:
    """An append-only journal of JSON objects, one per line, each write flushed and fsynced.

    The one torn-tail policy of the kit: a machine that dies in the middle of a write leaves at most
    one incomplete last line (no newline at its end, or not JSON). Reading drops it; the next append
    first cuts it off, so the file stays one object per line. Any other line that is not a JSON object
    is damage, not a crash: reading raises ``ValueError`` naming the file and line.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def read(self) -> list[dict]:
        """Every complete entry, in the order written ([] when the file does not exist)."""
        import json

        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")
        complete, tail = lines[:-1], lines[-1]
        out: list[dict] = []
        for number, raw in enumerate(complete, start=1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                raise ValueError(f"{self.path}: line {number} is not a JSON object; fix or remove that line")
            out.append(entry)
        return out

    def append(self, entry: dict) -> None:
        """Add one entry durably (a torn last line from a crash is cut off first)."""
        import json

        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
        with open(self.path, "ab+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":  # a torn last line: keep everything up to the last newline
                    handle.seek(0)
                    handle.truncate(handle.read().rfind(b"\n") + 1)
            handle.seek(0, os.SEEK_END)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
