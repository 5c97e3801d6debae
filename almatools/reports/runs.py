"""The output root of the reports: run folders written aside and moved into place, the history, the secret.

See :mod:`almatools.reports` for the layout of an output root.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from almatools.errors import AlmaToolsError, JournalError, ReportError
from almatools.files import AppendLog
from almatools.files import atomic_write as _atomic_write

log = logging.getLogger(__name__)

HISTORY_FILE = "history.jsonl"
LAST_FINDINGS_FILE = "last_findings.json"
SECRET_FILE = ".report-secret"
LATEST_FILE = "latest.txt"
LATEST_LINK = "latest"
RUN_FILE = "run.json"  # written last into a run's folder: the run is complete
KEYS_FILE = "finding_keys.json"
_TMP_PREFIX = ".tmp-"
_STALE_TMP_SECONDS = 24 * 3600
_LOCK_NAME = ".owner.lock"


@contextmanager
def step(name: str, source: Any = None) -> Iterator[None]:
    """Name a step of a run: any error inside becomes a :class:`ReportError` that says which step failed
    and on which source.

        >>> with step("loading the users source", "users.zip"):   # doctest: +SKIP
        ...     users = load_users("users.zip")
    """
    try:
        yield
    except ReportError:
        raise
    except Exception as err:
        where = f" ({source})" if source not in (None, "") else ""
        reason = str(err) if isinstance(err, AlmaToolsError) else f"{type(err).__name__}: {err}"
        raise ReportError(f"{name}{where} failed: {reason}", step=name, source=None if source is None
                          else str(source)) from err


# -- small file helpers ------------------------------------------------------------------------------

def _json_bytes(data: Any, indent: int | None = 1) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=indent) + "\n").encode("utf-8")


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _now() -> datetime:
    return datetime.now().astimezone()


# -- the output root: secret, history, runs ---------------------------------------------------------

def _root(root: str | os.PathLike[str] | None) -> Path:
    if root is None or str(root) == "":
        from almatools.config import data_home

        return data_home() / "reports"
    return Path(root).expanduser()


def load_secret(root: str | os.PathLike[str] | None) -> bytes:
    """The output root's key for hashes and masking tokens, made (readable by the owner only) on first use.

    Keep the file: without it the next run cannot tell new findings from old ones, and masked tokens
    change. It is never copied into a report.
    """
    folder = _root(root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    text = path.read_text(encoding="ascii").strip()
    if len(text) < 32:
        raise ReportError(f"{path} is damaged (too short): delete it to start a new history; the next run will "
                          "then see every finding as new.", step="reading the output root's key", source=str(path))
    return text.encode("ascii")


def read_history(root: str | os.PathLike[str] | None) -> list[dict[str, Any]]:
    """The runs recorded in the output root's ``history.jsonl``, oldest first.

    The file is an :class:`almatools.files.AppendLog`: a torn last line is dropped.

    Raises:
        ReportError: a line before the last is damaged (the message names the file and line).
    """
    path = _root(root) / HISTORY_FILE
    if not path.is_file():
        return []
    try:
        return AppendLog(path).read()
    except JournalError as err:
        raise ReportError(str(err), step="reading the run history", source=str(path)) from None


def read_last_findings(root: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The finding keys of the newest complete run (``{"run": name, "keys": {hash: [rule, id, other,
    field]}}``), or None when there was no run yet or the file cannot be read."""
    path = _root(root) / LAST_FINDINGS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        log.warning("cannot read %s (%s): every finding counts as new", path, err)
        return None
    return data if isinstance(data, dict) and isinstance(data.get("keys"), dict) else None


@dataclass
class ReportRun:
    """A run being written: its temporary folder and the output root it goes into.

    Attributes:
        root: the output root.
        folder: where the run's files are written until :func:`finish_run` moves them.
        started: when the run started (its folder's name comes from it).
        external: the folder was made by someone else (``almatools report``), who also finishes the run.
    """

    root: Path
    folder: Path
    started: datetime
    external: bool = False
    lock: Any = field(default=None, repr=False, compare=False)  # held while the run lives (see _hold)


def start_run(root: str | os.PathLike[str] | None = None, *, run_dir: str | os.PathLike[str] | None = None
              ) -> ReportRun:
    """Start a run: make the output root and a temporary folder in it to write into.

    Args:
        root: the output root (default: ``reports`` in the kit's data folder, ``$ALMATOOLS_DATA``).
        run_dir: a folder already made for this run (``almatools report`` makes it, runs the notebook,
            and finishes the run itself).
    """
    folder_root = _root(root)
    folder_root.mkdir(parents=True, exist_ok=True)
    load_secret(folder_root)
    if run_dir is not None:
        folder = Path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return ReportRun(folder_root, folder, _now(), external=True)
    _remove_stale_temporaries(folder_root)
    started = _now()
    folder = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{started:%Y-%m-%dT%H%M}-", dir=folder_root))
    return ReportRun(folder_root, folder, started, lock=_hold(folder))


def _hold(folder: Path) -> Any:
    """Lock ``folder/.owner.lock`` for as long as this process lives: the operating system releases the lock
    when the process ends, however it ends (kill -9 included), so the next run can tell a live run's
    temporary folder from one a dead run left behind. None where locks are not available."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: stale folders go by age alone
        return None
    handle = open(folder / _LOCK_NAME, "w")  # noqa: SIM115 - held open on purpose
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def _release(run: ReportRun) -> None:
    if run.lock is not None:
        run.lock.close()
        run.lock = None


def _abandoned(folder: Path) -> bool:
    """Whether a temporary run folder belongs to no live run: its lock is free (its run died), it has no
    lock and is over a minute old (a run that died before taking it), or it is over a day old."""
    age = time.time() - folder.stat().st_mtime
    if age > _STALE_TMP_SECONDS:
        return True
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return False
    try:
        handle = open(folder / _LOCK_NAME, "a")  # noqa: SIM115
    except FileNotFoundError:
        return age > 60
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live run holds it
        return True


def _remove_stale_temporaries(root: Path) -> None:
    """Remove the temporary folders killed runs left behind (with whatever unmasked data they held)."""
    for tmp in root.glob(f"{_TMP_PREFIX}*"):
        try:
            if tmp.is_dir() and _abandoned(tmp):
                log.info("removing %s, left behind by a run that did not finish", tmp.name)
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:  # pragma: no cover - vanished meanwhile
            pass


def abandon_run(run: ReportRun) -> None:
    """Remove a failed run's temporary folder: nothing of it stays in the output root."""
    if run.folder.exists() and run.folder.parent == run.root and run.folder.name.startswith(_TMP_PREFIX):
        shutil.rmtree(run.folder, ignore_errors=True)
    elif run.folder.exists() and not run.external:
        shutil.rmtree(run.folder, ignore_errors=True)
    _release(run)


def _run_name(root: Path, started: datetime) -> str:
    base = f"{started:%Y-%m-%dT%H%M}"
    name, number = base, 1
    while (root / name).exists():
        number += 1
        name = f"{base}-{number}"
    return name


def _append_line(path: Path, entry: dict[str, Any]) -> None:
    AppendLog(path, sort_keys=False).append(entry)


def finish_run(run: ReportRun) -> Path:
    """Move a complete run into place, record it in the history, and point ``latest`` at it.

    Returns:
        The run's folder (``root/2026-11-24T1030``).

    Raises:
        ReportError: the run is not complete (no ``run.json``), or it could not be moved or recorded;
            then nothing of it stays in the output root.
    """
    marker = run.folder / RUN_FILE
    if not marker.is_file():
        abandon_run(run)
        raise ReportError(f"the report in {run.folder} is incomplete (no {RUN_FILE}): nothing was kept.",
                          step="finishing the run", source=str(run.folder))
    entry = json.loads(marker.read_text(encoding="utf-8"))
    keys_path = run.folder / KEYS_FILE
    keys = json.loads(keys_path.read_text(encoding="utf-8")) if keys_path.is_file() else {}
    name = _run_name(run.root, run.started)
    final = run.root / name
    entry["run"] = name
    try:
        _atomic_write(marker, _json_bytes(entry))
        (run.folder / _LOCK_NAME).unlink(missing_ok=True)
        _release(run)
        os.replace(run.folder, final)
    except OSError as err:
        abandon_run(run)
        raise ReportError(f"moving the report into {final} failed: {err}", step="finishing the run",
                          source=str(final)) from err
    try:
        _append_line(run.root / HISTORY_FILE, entry)
    except OSError as err:
        shutil.rmtree(final, ignore_errors=True)
        raise ReportError(f"recording the run in {run.root / HISTORY_FILE} failed: {err}; the run was removed.",
                          step="finishing the run", source=str(run.root / HISTORY_FILE)) from err
    run.folder = final
    try:
        _atomic_write(run.root / LAST_FINDINGS_FILE, _json_bytes({"run": name, "keys": keys}, indent=None))
        _atomic_write(run.root / LATEST_FILE, (name + "\n").encode("utf-8"))
    except OSError as err:  # the run itself is complete and recorded
        log.warning("could not update %s: %s", run.root, err)
    _point_latest(run.root, name)
    return final


def _point_latest(root: Path, name: str) -> None:
    """``latest`` → the newest run, where the system allows symlinks (Windows often does not)."""
    link = root / LATEST_LINK
    if link.exists() and not link.is_symlink():
        return  # someone's own folder or file: leave it
    tmp = root / f".{LATEST_LINK}.{secrets.token_hex(4)}"
    try:
        os.symlink(name, tmp, target_is_directory=True)
        os.replace(tmp, link)
    except (OSError, NotImplementedError):
        tmp.unlink(missing_ok=True)
