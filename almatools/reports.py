"""Data-quality reports: one HTML page and one workbook per run, for people who do not program.

A run (``almatools report --out DIR``, or ``notebooks/04_data_quality_report.ipynb`` by hand) checks the
patron records (:func:`almatools.quality.analyse`), prepares the merge proposals of the duplicate
clusters (:func:`merge_proposals`), and this module turns the result into:

* ``report.html``: self-contained (no script, no external link; the charts are inline SVG): a summary,
  counts by rule, severity and user group, charts, the top findings, the duplicate clusters, the merge
  proposals, the trend against earlier runs and what was resolved since the last run;
* ``report.xlsx``: a summary sheet, one sheet per rule (header frozen, filters on, columns sized), the
  duplicate clusters, the merge proposals and the resolved findings;
* the CSV files of ``almatools quality`` (``findings.csv``, ``duplicates.csv``, ``summary.json`` …) and
  ``merge_proposals.csv``.

The output root
---------------
Everything a run writes goes into a folder of its own under the output root, named by the time it
started (``2026-11-24T1030``; ``-2``, ``-3`` … when two runs start in one minute)::

    DIR/
      2026-11-24T1030/          one complete run (report.html, report.xlsx, CSVs, report.ipynb, run.json)
      2026-12-01T1030/
      latest.txt                the name of the newest complete run (and ``latest``, a symlink, where allowed)
      history.jsonl             one line per run: its counts (no personal data), for the trend
      last_findings.json        the keys of the newest run's findings (keyed hashes), for new/resolved
      .report-secret            the key of the hashes and masking tokens (never copied into a report)

A run is written into a hidden temporary folder (``DIR/.tmp-…``) and renamed into place only when it
is complete (:func:`start_run`, :func:`finish_run`); a run that fails leaves nothing behind
(:func:`abandon_run`), and the history is appended only after the rename. A run holds an exclusive lock
on ``.owner.lock`` in its folder for as long as its process lives; :func:`start_run` removes every
``.tmp-…`` folder whose lock is free (its run was killed, even with kill -9), so nothing unmasked stays
behind and a live run's folder is never touched (without ``fcntl``, as on Windows: after a day).

Masking builds each message from masked values: a finding's message has the values of its own records
replaced first (:meth:`Masker.about`), whatever their shape, then known and recognisable values.

New and resolved
----------------
A finding is identified across runs by its key (rule, record, other record, field), stored as a keyed
hash (HMAC-SHA256 with the root's secret), so the history never holds personal data. "New since the
last run": its key was not among the last run's; "resolved since the last run": a key of the last run
that this run no longer has.

Masking
-------
With ``mask=True`` every name, email address, phone number and identifier in the HTML, the workbook
and the CSVs is replaced by a token from the same keyed hash: ``ID-…``, ``NAME-…``, ``EMAIL-…``,
``PHONE-…``. The same value always gets the same token, in every section and in every run of the
same output root, so a record can be followed without being named. Free text (messages, evidence,
reasons) is masked word by word: the values of the records in the report are looked up, and any
other word that looks like an email address or a long identifier is masked as well.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import math
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from almatools.errors import AlmaToolsError, JournalError
from almatools.files import atomic_write as _atomic_write
from almatools.files import AppendLog, text_cells, write_csv
from almatools.catalog import RULES, Severity
from almatools.quality.rules import FINDING_COLUMNS

if TYPE_CHECKING:
    from almatools.merge import Worklist
    from almatools.quality.run import QualityResult

__all__ = [
    "ReportError", "ReportRun", "ReportData", "Masker", "step", "start_run", "finish_run", "abandon_run",
    "load_secret", "read_history", "read_last_findings", "finding_key", "merge_proposals", "build_report",
    "render_html", "write_xlsx", "write_report", "SECTIONS",
    "HISTORY_FILE", "LAST_FINDINGS_FILE", "SECRET_FILE", "LATEST_FILE", "RUN_FILE", "KEYS_FILE",
    "ReportOutcome", "run_report",
]

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

SECTIONS = (
    ("summary", "Summary"),
    ("by-rule", "Findings by rule"),
    ("by-severity", "Findings by severity"),
    ("by-group", "Findings by user group"),
    ("trend", "Trend"),
    ("top-findings", "Top findings"),
    ("duplicates", "Duplicate clusters"),
    ("merge-proposals", "Merge proposals"),
    ("resolved", "Resolved since the last run"),
    ("about", "How to read this report"),
)
"""The report's sections, in order: (HTML id, heading)."""

SEVERITIES = tuple(s.value for s in Severity)
SEVERITY_COLOURS = {"error": "#c62828", "warning": "#e07b00", "info": "#1565c0"}
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_RULE_RANK = {r: i for i, r in enumerate(RULES)}
_XLSX_MAX_ROWS = 1_000_000  # Excel holds 1,048,576 rows a sheet


class ReportError(AlmaToolsError):
    """A step of a report run failed; the message names the step and the source it worked on.

    Attributes:
        step: what the run was doing, e.g. ``loading the users source``.
        source: the file or source it was working on (None when there is none).
    """

    def __init__(self, message: str, *, step: str = "", source: str | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.source = source


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


# -- masking -------------------------------------------------------------------------------------------

_TOKEN_PREFIX = {"id": "ID", "name": "NAME", "email": "EMAIL", "phone": "PHONE", "cluster": "C"}
_WORD = re.compile(r"[\w@.+,'’-]+")
_EDGE = ".,'’-"
_ID_LIKE = re.compile(r"(?=(?:[^\d]*\d){4})[A-Za-z0-9_]{6,}")  # a long code with 4+ digits: AL146187, rjf3728


def _digest(secret: bytes, text: str, size: int) -> str:
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()[:size]


class Masker:
    """Tokens for personal data, from a keyed hash: the same value always gets the same token.

    Args:
        secret: the output root's key (:func:`load_secret`).
        enabled: False: :meth:`text` and the column methods return values unchanged (tokens are still
            made for the finding keys).
    """

    def __init__(self, secret: bytes, *, enabled: bool = True) -> None:
        self._secret = secret
        self.enabled = enabled
        self._folded: dict[str, str] = {}  # ids, emails, phones (compared ignoring case) -> token
        self._exact: dict[str, str] = {}  # name words, as written -> token
        # Each learnt record's own values, whatever their form ("yu.xi(at)mailhost.com", a 3-letter id): text
        # about a record has them replaced first, so nothing depends on recognising their shape.
        self._own: dict[str, list[tuple[str, str]]] = {}
        self._own_re: dict[tuple[str, ...], re.Pattern[str] | None] = {}

    def token(self, kind: str, value: Any) -> str:
        """The token of ``value`` (``kind``: ``id``, ``name``, ``email`` or ``phone``); "" for no value."""
        text = _text(value).strip()
        if not text:
            return ""
        return f"{_TOKEN_PREFIX[kind]}-{_digest(self._secret, f'{kind}:{text.casefold()}', 12)}"

    def learn(self, frame: pd.DataFrame | None, *, only: Iterable[str] | None = None) -> None:
        """Remember the personal values of a patron table's records, so free text naming them is masked.

        Args:
            frame: a patron table (:mod:`almatools.quality.frame` columns; missing columns are skipped).
            only: the primary ids (any case) of the records to learn; None: all of them.
        """
        if frame is None or frame.empty or "primary_id" not in frame.columns:
            return
        rows = frame
        if only is not None:
            wanted = {_text(v).strip().casefold() for v in only}
            keys = frame["primary_id"].astype("string").fillna("").str.strip().str.casefold()
            rows = frame[keys.isin(wanted).to_numpy()]
        if rows.empty:
            return

        def values(column: str, split: str | None = None) -> set[str]:
            if column not in rows.columns:
                return set()
            out: set[str] = set()
            for value in rows[column].astype("string").fillna("").tolist():
                out.update(p.strip() for p in (value.split(split) if split else [value]) if p.strip())
            return out
        ids = values("primary_id") | values("identifier_values", ";")
        ids |= {pair.partition("=")[2].strip() for pair in values("identifiers", ";")} - {""}
        for value in ids:
            if len(value) >= 4:
                self._folded[value.casefold()] = self.token("id", value)
        for value in values("email") | values("emails", ";"):
            self._folded[value.casefold()] = self.token("email", value)
        for value in values("phone"):
            if len(value) >= 6:
                self._folded[value.casefold()] = self.token("phone", value)
        self._learn_own(rows)
        for column in ("first_name", "middle_name", "last_name"):
            for value in values(column):
                for word in value.split():
                    for part in {word, *word.split("-")}:
                        part = part.strip(_EDGE)
                        if len(part) >= 2:
                            self._exact[part] = self.token("name", part)

    def _learn_own(self, rows: pd.DataFrame) -> None:
        kinds = (("primary_id", "id", None), ("identifier_values", "id", ";"), ("identifiers", "id", ";"),
                 ("email", "email", None), ("emails", "email", ";"), ("phone", "phone", None),
                 ("first_name", "name", None), ("middle_name", "name", None), ("last_name", "name", None))
        present = [k for k in kinds if k[0] in rows.columns]
        columns = {c: rows[c].astype("string").fillna("").tolist() for c, _k, _s in present}
        for n, pid in enumerate(columns.get("primary_id", [])):
            key = pid.strip().casefold()
            if not key:
                continue
            own = self._own.setdefault(key, [])
            for column, kind, sep in present:
                for part in columns[column][n].split(sep) if sep else [columns[column][n]]:
                    if column == "identifiers":
                        part = part.partition("=")[2]
                    part = part.strip()
                    if part:
                        own.append((part, self.token(kind, part)))
                        if kind == "name":
                            own.extend((w.strip(_EDGE), self.token("name", w.strip(_EDGE))) for w in part.split()
                                       if w.strip(_EDGE))

    def _own_pattern(self, records: tuple[str, ...]) -> tuple[re.Pattern[str] | None, dict[str, str]]:
        tokens: dict[str, str] = {}
        for rec in records:
            for value, token in self._own.get(rec, ()):
                tokens.setdefault(value.casefold(), token)
        if records not in self._own_re:
            if len(self._own_re) > 50_000:
                self._own_re.clear()
            alternatives = sorted(tokens, key=len, reverse=True)
            self._own_re[records] = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, alternatives)) + r")(?!\w)",
                                               re.IGNORECASE) if alternatives else None
        return self._own_re[records], tokens

    def about(self, value: Any, records: Iterable[Any]) -> str:
        """Free text about some records (a finding's message, a pair's evidence): every value those records
        hold is replaced by its token first, whatever its shape, then :meth:`text` masks the rest."""
        text = _text(value)
        if not self.enabled or not text:
            return text
        keys = tuple(sorted({_text(r).strip().casefold() for r in records} - {""}))
        pattern, tokens = self._own_pattern(keys)
        if pattern is not None:
            text = pattern.sub(lambda m: tokens.get(m.group(0).casefold(), m.group(0)), text)
        return self.text(text)

    def learn_clusters(self, cluster_ids: Iterable[Any]) -> None:
        """Remember duplicate cluster ids: the linkage names a cluster by an unkeyed hash of its members'
        ids, which anyone holding a list of ids could test, so a masked report renames them."""
        for value in cluster_ids:
            text = _text(value).strip()
            if text:
                self._folded[text.casefold()] = self.token("cluster", text)

    def _lookup(self, core: str) -> str | None:
        folded = core.casefold()
        if folded in self._folded:
            return self._folded[folded]
        if core in self._exact:
            return self._exact[core]
        if "@" in core:
            return self.token("email", core)
        if (core.isdigit() and len(core) >= 6) or _ID_LIKE.fullmatch(core):
            return self.token("id", core)
        return None

    def _word(self, match: re.Match[str]) -> str:
        run = match.group(0)
        core = run.strip(_EDGE)
        if not core:
            return run
        lead = run[:run.index(core)]
        trail = run[len(lead) + len(core):]
        found = self._lookup(core)
        if found is not None:
            return lead + found + trail
        parts = re.split(r"([.,'’])", core)  # e.g. "Ramirez,FACULTY" or "name.surname" glued by punctuation
        if len(parts) > 1:
            masked = [self._lookup(p) if p and p not in ".,'’" else None for p in parts]
            if any(m is not None for m in masked):
                return lead + "".join(m if m is not None else p for m, p in zip(masked, parts)) + trail
        return run

    def text(self, value: Any) -> str:
        """Free text with every known or recognisable personal value replaced by its token."""
        text = _text(value)
        if not self.enabled or not text:
            return text
        return _WORD.sub(self._word, text)

    def id(self, value: Any) -> str:
        """An identifier column's value."""
        return self.token("id", value) if self.enabled else _text(value)

    def ids(self, value: Any, sep: str = ";") -> str:
        """A column of ``sep``-joined identifiers."""
        if not self.enabled:
            return _text(value)
        return sep.join(self.token("id", v) for v in _text(value).split(sep) if v.strip())

    def cluster(self, value: Any) -> str:
        """A duplicate cluster id."""
        return self.token("cluster", value) if self.enabled else _text(value)

    def name(self, value: Any) -> str:
        """A name column's value (``First Last`` or ``Last, First``): every word becomes a name token."""
        if not self.enabled:
            return _text(value)
        return re.sub(r"[^\s,]+", lambda m: self.token("name", m.group(0).strip(_EDGE) or m.group(0)), _text(value))

    def frame(self, frame: pd.DataFrame, *, ids: Iterable[str] = (), id_lists: Iterable[str] = (),
              names: Iterable[str] = (), texts: Iterable[str] = (), clusters: Iterable[str] = ()) -> pd.DataFrame:
        """A copy of ``frame`` with the named columns masked (columns it lacks are skipped)."""
        out = frame.copy()
        if not self.enabled:
            return out
        for columns, func in ((ids, self.id), (id_lists, self.ids), (names, self.name), (texts, self.text),
                              (clusters, self.cluster)):
            for column in columns:
                if column in out.columns:
                    out[column] = [func(v) for v in out[column].tolist()]
        return out


# -- finding keys ------------------------------------------------------------------------------------

def finding_key(secret: bytes, rule_id: str, primary_id: str, other_primary_id: str, field_name: str) -> str:
    """The keyed hash that identifies a finding across runs (a duplicate pair in either order)."""
    a, b = _text(primary_id).strip().casefold(), _text(other_primary_id).strip().casefold()
    if rule_id == "DUPLICATE" and b < a:
        a, b = b, a
    return _digest(secret, "\x1f".join(("finding", rule_id, a, b, _text(field_name))), 16)


def _keys(findings: pd.DataFrame, secret: bytes, masker: Masker) -> tuple[list[str], dict[str, list[str]]]:
    """(the key of every finding in order, {key: [rule, id token, other token, field]})."""
    order: list[str] = []
    table: dict[str, list[str]] = {}
    columns = [findings[c].astype("string").fillna("").tolist()
               for c in ("rule_id", "primary_id", "other_primary_id", "field")]
    for rule, pid, other, fld in zip(*columns):
        key = finding_key(secret, rule, pid, other, fld)
        order.append(key)
        if key not in table:
            table[key] = [rule, masker.token("id", pid), masker.token("id", other), fld]
    return order, table


# -- merge proposals ---------------------------------------------------------------------------------

def merge_proposals(result: QualityResult, sis: pd.DataFrame | None = None, *,
                    requests: str | os.PathLike[str] | pd.DataFrame | None = None) -> Worklist:
    """The merge worklist of a run's duplicate clusters (every pair ``proposed``; nothing is saved).

    Args:
        result: the run's :class:`~almatools.quality.QualityResult`.
        sis: the SIS extract's patron table: which SIS records are current (without it every SIS-managed
            record counts as current, the cautious reading).
        requests: merge requests recorded at registration, if any.
    """
    from almatools.merge import propose

    sis_ids = None if sis is None else sis["primary_id"].astype("string").fillna("").tolist()
    return propose(result.clusters, result.users, sis_ids, requests=requests, pairs=result.pairs)


# -- the report's data -------------------------------------------------------------------------------

@dataclass
class ReportData:
    """Everything the HTML and the workbook show, already masked when ``masked``.

    Attributes:
        title, period: as given (the period, e.g. "November 2026", may be empty).
        generated_at: when the report was built (ISO, with offset).
        masked: personal data is replaced by tokens.
        summary: the headline numbers (see :meth:`summary_text`).
        by_rule: one row per rule: counts now, at the last run, new and resolved.
        by_severity, by_group: (name, count, count at the last run) rows.
        findings: every finding, with ``new`` (True/False; None on a first run).
        top: the top findings (severity, then new first, then rule order).
        clusters: one row per clustered record; cluster_groups: the top clusters with their members.
        proposals: one row per merge pair; held: clusters held for manual review.
        resolved: the findings of the last run that this run no longer has.
        trend: one row per run (earlier runs from the history, then this one).
        previous_run: the name of the run "new" and "resolved" compare with (None on a first run).
        entry: this run's history record (no personal data).
        keys: {finding key: [rule, id token, other token, field]} of this run.
    """

    title: str
    period: str
    generated_at: str
    masked: bool
    summary: dict[str, Any]
    by_rule: list[dict[str, Any]]
    by_severity: list[dict[str, Any]]
    by_group: list[dict[str, Any]]
    findings: pd.DataFrame
    top: pd.DataFrame
    clusters: pd.DataFrame
    cluster_groups: list[dict[str, Any]]
    proposals: pd.DataFrame
    held: list[dict[str, Any]]
    resolved: pd.DataFrame
    trend: list[dict[str, Any]]
    previous_run: str | None
    entry: dict[str, Any]
    keys: dict[str, list[str]] = field(repr=False, default_factory=dict)
    top_n: int = 50

    def summary_text(self) -> str:
        """The headline numbers in a few lines (no personal data)."""
        s = self.summary
        sev = ", ".join(f"{r['severity']} {r['count']:,}" for r in self.by_severity)
        lines = [f"{self.title}{f' ({self.period})' if self.period else ''}: records as of {s['today']}, "
                 f"policy {s['policy']}",
                 f"Users: {s['users']:,}; SIS extract: "
                 + (f"{s['sis_users']:,} records" if s["sis_users"] is not None else "none"),
                 f"Findings: {s['findings']:,} on {s['records_with_findings']:,} records ({sev})"]
        if self.previous_run:
            lines.append(f"Since the last run ({self.previous_run}): {s['new']:,} new, {s['resolved']:,} resolved")
        else:
            lines.append("First run in this folder: new and resolved findings are counted from the next run on.")
        lines.append(f"Duplicates: {s['duplicate_clusters']:,} clusters; merge proposals: {s['merge_proposals']:,} "
                     f"pairs ({s['merge_blocked']:,} fail a hard check for now), {s['merge_held']:,} held")
        if self.masked:
            lines.append("Personal data is masked (names, emails and identifiers are tokens).")
        return "\n".join(lines)


def _source_info(src: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not src:
        return None
    given = _text(src.get("source"))
    shown = given if given.strip().lower() in ("api:", "") else Path(given).name
    return {"source": shown, "kind": _text(src.get("kind")), "records": int(src.get("records") or 0),
            "skipped": int(src.get("skipped") or 0)}


def _counts(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def build_report(result: QualityResult, worklist: Worklist | None = None, *,
                 root: str | os.PathLike[str] | None = None, sis: pd.DataFrame | None = None, mask: bool = False,
                 title: str = "Patron data quality", period: str = "", top_n: int = 50,
                 history: list[dict[str, Any]] | None = None, last: dict[str, Any] | None = None,
                 secret: bytes | None = None) -> ReportData:
    """Build the report of a run.

    Args:
        result: the run's :class:`~almatools.quality.QualityResult`.
        worklist: the merge proposals (:func:`merge_proposals`); None: none.
        root: the output root, for the history, the last run's findings and the secret (unless given).
        sis: the SIS extract's patron table (its records' values are masked too).
        mask: replace names, emails and identifiers by tokens.
        title, period: shown at the top (the period, e.g. "November 2026", may be empty).
        top_n: how many findings, clusters and merge pairs the HTML lists (the workbook has them all).
        history, last, secret: instead of reading them from ``root``.
    """
    secret = secret if secret is not None else load_secret(root)
    history = history if history is not None else read_history(root)
    last = last if last is not None else read_last_findings(root)
    masker = Masker(secret, enabled=mask)
    summary_in = result.summary
    findings = result.findings.reset_index(drop=True).astype("string").fillna("")
    clusters = result.clusters.reset_index(drop=True)
    proposals = worklist.to_frame() if worklist is not None else pd.DataFrame(
        columns=["pair_id", "cluster_id", "status", "source", "from_primary_id", "from_name", "to_primary_id",
                 "to_name", "match_probability", "reason", "hard_failures", "warnings", "evidence", "note",
                 "reviewer", "decided_at", "verified"])
    held = list(worklist.held) if worklist is not None else []

    if mask:
        involved = set(findings["primary_id"]) | set(findings["other_primary_id"])
        involved |= set(clusters["primary_id"].astype("string").fillna("")) if len(clusters) else set()
        involved |= set(proposals["from_primary_id"].astype(str)) | set(proposals["to_primary_id"].astype(str))
        for h in held:
            involved |= set(h.get("primary_ids", []))
        involved.discard("")
        masker.learn(result.users, only=involved)
        masker.learn(sis, only=involved)
        masker.learn_clusters(set(clusters["cluster_id"].astype("string").fillna("")) if len(clusters) else ())

    # new and resolved, against the last run's keys
    order, keys = _keys(findings, secret, masker)
    previous_keys: dict[str, list[str]] | None = last.get("keys") if last else None
    previous_run = (_text(last.get("run")) or None) if last else None
    if previous_keys is None:
        new_flags: list[bool | None] = [None] * len(order)
        resolved_keys: list[str] = []
    else:
        new_flags = [k not in previous_keys for k in order]
        current = set(keys)
        resolved_keys = [k for k in previous_keys if k not in current]
    shown = masker.frame(findings, ids=["primary_id", "other_primary_id"])
    if masker.enabled:  # a message is built from its records' values: they are masked first, whatever their form
        shown["message"] = [masker.about(m, (p, o)) for m, p, o in zip(findings["message"].tolist(),
                                                                      findings["primary_id"].tolist(),
                                                                      findings["other_primary_id"].tolist())]
    shown = shown.assign(new=pd.array(new_flags, dtype="boolean"))
    new_total = sum(1 for f in new_flags if f)
    resolved = _resolved_frame(resolved_keys, previous_keys or {}, result, findings, masker)

    # counts
    prev = history[-1] if history else None
    now_rule = _counts(findings["rule_id"])
    new_rule = _counts(r for r, f in zip(findings["rule_id"], new_flags) if f)
    res_rule = _counts(resolved["rule_id"]) if len(resolved) else {}
    not_checked = set(summary_in.get("rules_not_checked", []))
    by_rule = []
    for rule_id, rule in RULES.items():
        before = (prev or {}).get("by_rule", {}).get(rule_id) if prev else None
        by_rule.append({"rule_id": rule_id, "severity": rule.severity.value, "family": rule.family,
                        "title": rule.title, "action": rule.action, "count": now_rule.get(rule_id, 0),
                        "previous": before, "new": new_rule.get(rule_id, 0) if previous_keys is not None else None,
                        "resolved": res_rule.get(rule_id, 0) if previous_keys is not None else None,
                        "checked": rule_id not in not_checked
                        and not (rule_id == "DUPLICATE" and summary_in.get("duplicates") != "done")})
    now_sev = _counts(findings["severity"])
    by_severity = [{"severity": s, "count": now_sev.get(s, 0),
                    "previous": (prev or {}).get("by_severity", {}).get(s, 0) if prev else None} for s in SEVERITIES]
    groups = findings["user_group"].replace("", "(none)")
    now_group = _counts(groups)
    prev_group = (prev or {}).get("by_group", {}) if prev else {}
    by_group = [{"group": g, "count": n, "previous": prev_group.get(g, 0) if prev else None}
                for g, n in sorted(now_group.items(), key=lambda kv: (-kv[1], kv[0]))]
    by_group += [{"group": g, "count": 0, "previous": n} for g, n in sorted(prev_group.items())
                 if g not in now_group and n]

    # top findings: errors first, new before old, then the catalogue's order
    rank = pd.DataFrame({"sev": findings["severity"].map(_SEVERITY_RANK).fillna(9).to_numpy(),
                         "new": [0 if f else 1 for f in new_flags],
                         "rule": findings["rule_id"].map(_RULE_RANK).fillna(99).to_numpy(),
                         "pos": range(len(findings))})
    top = shown.iloc[rank.sort_values(["sev", "new", "rule", "pos"])["pos"].to_numpy()[:top_n]]

    # duplicate clusters and merge proposals
    shown_clusters = masker.frame(clusters, ids=["primary_id"], id_lists=["other_primary_ids"],
                                  names=["first_name", "last_name"], clusters=["cluster_id"])
    if masker.enabled and "evidence" in clusters.columns:
        others = clusters["other_primary_ids"].astype("string").fillna("").tolist() \
            if "other_primary_ids" in clusters.columns else [""] * len(clusters)
        shown_clusters["evidence"] = [masker.about(e, [p, *o.split(";")]) for e, p, o in zip(
            clusters["evidence"].tolist(), clusters["primary_id"].tolist(), others)]
    cluster_groups = _cluster_groups(shown_clusters, top_n)
    shown_proposals = masker.frame(proposals, ids=["from_primary_id", "to_primary_id"],
                                   names=["from_name", "to_name", "reviewer"], clusters=["cluster_id"])
    if masker.enabled:
        for column in ("reason", "hard_failures", "warnings", "evidence", "note", "verified"):
            if column in proposals.columns:
                shown_proposals[column] = [masker.about(t, (f, o)) for t, f, o in zip(
                    proposals[column].tolist(), proposals["from_primary_id"].tolist(),
                    proposals["to_primary_id"].tolist())]
    shown_held = [{"cluster_id": masker.cluster(h.get("cluster_id")) if h.get("cluster_id") else "",
                   "primary_ids": [masker.id(p) for p in h.get("primary_ids", [])],
                   "reason": masker.about(h.get("reason"), h.get("primary_ids", []))} for h in held]
    blocked = int((proposals["hard_failures"].astype("string").fillna("") != "").sum()) if len(proposals) else 0

    generated = _now()
    today = _text(summary_in.get("today"))
    period = period.strip()
    users_src = _source_info(summary_in.get("sources", {}).get("users"))
    sis_src = _source_info(summary_in.get("sources", {}).get("sis"))
    summary = {
        "today": today, "policy": _text(summary_in.get("policy")), "users": int(summary_in.get("users", 0)),
        "sis_users": summary_in.get("sis_users"), "findings": len(findings),
        "records_with_findings": int(findings["primary_id"].nunique()) if len(findings) else 0,
        "new": new_total, "resolved": len(resolved), "duplicates": _text(summary_in.get("duplicates")),
        "duplicate_pairs": int(summary_in.get("duplicate_pairs", 0)),
        "duplicate_clusters": int(clusters["cluster_id"].nunique()) if len(clusters) else 0,
        "clustered_records": len(clusters), "merge_proposals": len(proposals), "merge_blocked": blocked,
        "merge_held": len(held), "rules_not_checked": sorted(not_checked, key=lambda r: _RULE_RANK.get(r, 99)),
        "sources": {"users": users_src, "sis": sis_src},
        "skipped": sum(s["skipped"] for s in (users_src, sis_src) if s),
        **{f"severity_{s['severity']}": s["count"] for s in by_severity},
    }
    entry = {
        "version": 1, "run": None, "generated_at": generated.isoformat(timespec="seconds"), "today": today,
        "title": title, "period": period, "masked": mask, "policy": summary["policy"], "users": summary["users"],
        "sis_users": summary["sis_users"], "findings": summary["findings"],
        "records_with_findings": summary["records_with_findings"],
        "by_rule": {r: now_rule.get(r, 0) for r in RULES},
        "by_severity": {s["severity"]: s["count"] for s in by_severity}, "by_group": now_group,
        "duplicate_pairs": summary["duplicate_pairs"], "duplicate_clusters": summary["duplicate_clusters"],
        "merge_proposals": summary["merge_proposals"], "merge_blocked": blocked, "merge_held": len(held),
        "new": new_total if previous_keys is not None else None,
        "resolved": len(resolved) if previous_keys is not None else None, "previous_run": previous_run,
        "sources": {k: v for k, v in summary["sources"].items() if v},
    }
    trend = [_trend_row(e) for e in history[-24:]] + [_trend_row(entry, label="this run")]
    return ReportData(title=title, period=period, generated_at=entry["generated_at"], masked=mask, summary=summary,
                      by_rule=by_rule, by_severity=by_severity, by_group=by_group, findings=shown, top=top,
                      clusters=shown_clusters, cluster_groups=cluster_groups, proposals=shown_proposals,
                      held=shown_held, resolved=resolved, trend=trend, previous_run=previous_run, entry=entry,
                      keys=keys, top_n=top_n)


def _trend_row(entry: Mapping[str, Any], label: str | None = None) -> dict[str, Any]:
    sev = entry.get("by_severity", {}) or {}
    return {"run": label or _text(entry.get("run")) or _text(entry.get("generated_at"))[:16],
            "today": _text(entry.get("today")), "users": entry.get("users"), "findings": entry.get("findings", 0),
            **{s: int(sev.get(s, 0)) for s in SEVERITIES},
            "duplicate_clusters": entry.get("duplicate_clusters"), "merge_proposals": entry.get("merge_proposals"),
            "new": entry.get("new"), "resolved": entry.get("resolved")}


def _resolved_frame(resolved_keys: list[str], previous: Mapping[str, list[str]], result: QualityResult,
                    findings: pd.DataFrame, masker: Masker) -> pd.DataFrame:
    """The last run's findings that are gone, with the records named when the report is not masked
    and the record is still known (a purged record keeps its token)."""
    columns = ["rule_id", "severity", "title", "primary_id", "other_primary_id", "field"]
    if not resolved_keys:
        return pd.DataFrame(columns=columns, dtype="object")
    names: dict[str, str] = {}
    if not masker.enabled:
        wanted = {t for k in resolved_keys for t in previous[k][1:3] if t}
        pool = set(result.users["primary_id"].astype("string").fillna("")) | set(findings["primary_id"])
        pool |= set(findings["other_primary_id"])
        for pid in pool:
            if pid and (token := masker.token("id", pid)) in wanted:
                names[token] = pid
    rows = []
    for key in resolved_keys:
        rule_id, pid, other, fld = (list(previous[key]) + ["", "", "", ""])[:4]
        rule = RULES.get(rule_id)
        rows.append({"rule_id": rule_id, "severity": rule.severity.value if rule else "",
                     "title": rule.title if rule else "", "primary_id": names.get(pid, pid),
                     "other_primary_id": names.get(other, other), "field": fld})
    frame = pd.DataFrame(rows, columns=columns)
    frame["_rank"] = frame["rule_id"].map(_RULE_RANK).fillna(99)
    return frame.sort_values(["_rank", "primary_id"]).drop(columns="_rank").reset_index(drop=True)


def _cluster_groups(clusters: pd.DataFrame, top_n: int) -> list[dict[str, Any]]:
    if clusters.empty:
        return []
    groups = []
    for cid, members in clusters.groupby(clusters["cluster_id"].astype(str), sort=False):
        probability = pd.to_numeric(members["match_probability"], errors="coerce")
        groups.append({"cluster_id": cid, "size": len(members),
                       "probability": float(probability.max()) if probability.notna().any() else None,
                       "members": [{k: _text(v) for k, v in m.items()} | {
                           "match_probability": _text(m.get("match_probability")) and
                           f"{float(m['match_probability']):.3f}"} for m in members.to_dict("records")]})
    groups.sort(key=lambda g: (-g["size"], -(g["probability"] or 0), g["cluster_id"]))
    return groups[:top_n]


# -- charts: inline SVG, no script ---------------------------------------------------------------------

def _esc(value: Any) -> str:
    return html.escape(_text(value), quote=True)


def bar_chart(items: list[tuple[str, int]], *, label: str, colours: Mapping[str, str] | None = None,
              width: int = 620) -> str:
    """A horizontal bar chart as inline SVG (one bar per item, the value written beside it)."""
    if not items or not any(v for _, v in items):
        return '<p class="muted">Nothing to chart.</p>'
    left, right, bar, gap = 190, 70, 18, 6
    height = len(items) * (bar + gap) + gap
    top = max(v for _, v in items)
    parts = [f'<svg class="chart" role="img" aria-label="{_esc(label)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{_esc(label)}</title>']
    for i, (name, value) in enumerate(items):
        y = gap + i * (bar + gap)
        w = 0 if not value else max(1, round((width - left - right) * value / top))
        colour = (colours or {}).get(name, "#4a6fa5")
        parts.append(f'<text x="{left - 6}" y="{y + bar - 5}" text-anchor="end">{_esc(name)}</text>'
                     f'<rect x="{left}" y="{y}" width="{w}" height="{bar}" fill="{colour}"/>'
                     f'<text x="{left + w + 5}" y="{y + bar - 5}">{value:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _nice(top: float) -> float:
    if top <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(top))
    for step_ in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if top <= step_ * magnitude:
            return step_ * magnitude
    return 10 * magnitude  # pragma: no cover


def line_chart(labels: list[str], series: Mapping[str, list[int | None]], *, label: str,
               colours: Mapping[str, str] | None = None, width: int = 680, height: int = 260) -> str:
    """Lines over runs as inline SVG: one line per series, the runs along the bottom."""
    values = [v for vs in series.values() for v in vs if v is not None]
    if not labels or not values:
        return '<p class="muted">Nothing to chart.</p>'
    left, right, top_pad, bottom = 56, 130, 14, 46
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    ceiling = _nice(max(values))
    n = len(labels)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top_pad + plot_h * (1 - v / ceiling)
    parts = [f'<svg class="chart" role="img" aria-label="{_esc(label)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{_esc(label)}</title>']
    for frac in (0, 0.5, 1):
        yy = y(ceiling * frac)
        parts.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{ceiling * frac:,.0f}</text>')
    every = max(1, math.ceil(n / 8))
    for i, name in enumerate(labels):
        if i % every == 0 or i == n - 1:
            parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 18}" text-anchor="middle" '
                         f'class="small">{_esc(name[:10])}</text>'
                         f'<text x="{x(i):.1f}" y="{height - bottom + 32}" text-anchor="middle" '
                         f'class="small">{_esc(name[10:])}</text>')
    for k, (name, vs) in enumerate(series.items()):
        colour = (colours or {}).get(name, "#4a6fa5")
        points = [(x(i), y(v)) for i, v in enumerate(vs) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{colour}"/>' for px, py in points]
        ly = top_pad + 14 + 18 * k
        parts.append(f'<rect x="{left + plot_w + 14}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{left + plot_w + 31}" y="{ly + 1}">{_esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# -- HTML --------------------------------------------------------------------------------------------

def render_html(data: ReportData) -> str:
    """The report as one self-contained HTML page (no script, no external resource)."""
    from jinja2 import Environment, PackageLoader

    env = Environment(loader=PackageLoader("almatools", "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["n"] = lambda v: "–" if v is None or v == "" else f"{int(v):,}"
    env.filters["delta"] = _delta
    rule_colours = {r["rule_id"]: SEVERITY_COLOURS[r["severity"]] for r in data.by_rule}
    charts = {
        "by_rule": bar_chart([(r["rule_id"], r["count"]) for r in data.by_rule if r["count"]],
                             label="Findings by rule", colours=rule_colours),
        "by_severity": bar_chart([(s["severity"], s["count"]) for s in data.by_severity],
                                 label="Findings by severity", colours=SEVERITY_COLOURS),
        "by_group": bar_chart([(g["group"], g["count"]) for g in data.by_group if g["count"]],
                              label="Findings by user group"),
        "trend": line_chart([t["run"] for t in data.trend],
                            {"all findings": [t["findings"] for t in data.trend],
                             **{s: [t[s] for t in data.trend] for s in SEVERITIES}},
                            label="Findings per run", colours={"all findings": "#444", **SEVERITY_COLOURS}),
    }  # SVG built here with every text escaped: the template inserts it as it is
    top = data.top.to_dict("records")
    for row in top:
        row["title"] = RULES[row["rule_id"]].title if row["rule_id"] in RULES else ""
        row["new"] = None if row["new"] is pd.NA else bool(row["new"])
    proposals = data.proposals.head(data.top_n).to_dict("records")
    for row in proposals:
        row["match_probability"] = _prob(row.get("match_probability"))
    statuses = data.proposals["status"].value_counts().to_dict() if len(data.proposals) else {}
    resolved_by_rule = [(r["rule_id"], r["resolved"]) for r in data.by_rule if r["resolved"]]
    return env.get_template("report.html").render(
        d=data, s=data.summary, sections=SECTIONS, charts=charts, top=top, proposals=proposals,
        statuses=statuses, resolved=data.resolved.head(data.top_n).to_dict("records"),
        resolved_by_rule=resolved_by_rule, severities=SEVERITIES, colours=SEVERITY_COLOURS,
        generated=data.generated_at.replace("T", " "))


def _prob(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(number) else f"{number:.3f}"


def _delta(now: Any, before: Any) -> str:
    if before is None or before == "":
        return ""
    change = int(now or 0) - int(before)
    return "±0" if change == 0 else f"{change:+,}"


# -- the workbook ------------------------------------------------------------------------------------

_RULE_SHEET_COLUMNS = ["primary_id", "other_primary_id", "user_group", "account_type", "field", "severity",
                       "message", "action", "new_since_last_run"]


def _clean_cell(value: Any) -> Any:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def _yes_no(flags: pd.Series) -> list[str]:
    return ["" if f is pd.NA or f is None else ("yes" if f else "no") for f in flags.tolist()]


def write_xlsx(data: ReportData, path: str | os.PathLike[str]) -> Path:
    """``report.xlsx``: a summary sheet, one sheet per rule (header frozen, filters on, columns sized),
    the duplicate clusters, the merge proposals and the resolved findings."""
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    target = Path(path)
    sheets: list[tuple[str, pd.DataFrame]] = []
    rows = [("Report", data.title), ("Period", data.period), ("As of", data.summary["today"]),
            ("Generated", data.generated_at), ("Policy", data.summary["policy"]),
            ("Users", data.summary["users"]), ("Findings", data.summary["findings"]),
            ("Records with findings", data.summary["records_with_findings"]),
            *[(f"  {s['severity']}", s["count"]) for s in data.by_severity],
            ("New since the last run", data.summary["new"] if data.previous_run else "first run"),
            ("Resolved since the last run", data.summary["resolved"] if data.previous_run else "first run"),
            ("Duplicate clusters", data.summary["duplicate_clusters"]),
            ("Merge proposals", data.summary["merge_proposals"]),
            ("Personal data masked", "yes" if data.masked else "no")]
    summary = pd.DataFrame(rows, columns=["item", "value"])
    by_rule = pd.DataFrame([{"rule_id": r["rule_id"], "severity": r["severity"], "findings": r["count"],
                             "last_run": r["previous"], "new": r["new"], "resolved": r["resolved"],
                             "title": r["title"], "what_to_do": r["action"]} for r in data.by_rule])
    sheets.append(("Summary", summary))
    sheets.append(("By rule", by_rule))
    findings = data.findings.assign(new_since_last_run=_yes_no(data.findings["new"]))
    for rule_id in RULES:
        part = findings.loc[findings["rule_id"] == rule_id, _RULE_SHEET_COLUMNS]
        sheets.append((rule_id[:31], part.head(_XLSX_MAX_ROWS)))
    sheets.append(("Duplicate clusters", data.clusters))
    sheets.append(("Merge proposals", data.proposals))
    sheets.append(("Resolved", data.resolved))
    target.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(target, engine="openpyxl") as writer:
        for name, frame in sheets:
            clean = frame.astype("object").where(frame.notna(), None).map(_clean_cell) if len(frame) else frame
            clean.to_excel(writer, sheet_name=name, index=False)
        for name, frame in sheets:
            ws = writer.sheets[name]
            text_cells(ws)  # a value that starts with "=" is data, never a formula
            for cell in ws[1]:
                cell.font = Font(bold=True)
            ws.freeze_panes = "A2"
            ws.auto_filter.ref = ws.dimensions
            sample = frame.head(2000).astype("string").fillna("")
            for index, column in enumerate(frame.columns, 1):
                longest = max([len(str(column))] + [len(v) for v in sample[column].tolist()])
                ws.column_dimensions[get_column_letter(index)].width = min(80, max(8, longest + 2))
    return target


# -- all the files of a run -----------------------------------------------------------------------------

def write_report(data: ReportData, folder: str | os.PathLike[str], *, result: QualityResult | None = None,
                 worklist: Worklist | None = None, unmasked_csv: bool = False) -> dict[str, Path]:
    """Write a run's files into ``folder``; ``run.json`` (the history record) comes last and marks the run
    complete.

    Files: ``report.html``, ``report.xlsx``, ``findings.csv``, ``duplicates.csv``, ``merge_proposals.csv``,
    ``summary.json``, ``summary.txt`` (and ``load_errors.csv``, unmasked only), ``finding_keys.json``,
    ``run.json``. When masked, the CSVs are masked too, and the unmasked ones are written (into
    ``unmasked/``) only with ``unmasked_csv``.

    Args:
        data: the report (:func:`build_report`).
        folder: the run's folder (:attr:`ReportRun.folder`).
        result: the run's analysis: needed for the unmasked CSVs.
        worklist: the merge proposals, for the unmasked ``merge_proposals.csv`` of a masked report.
        unmasked_csv: with a masked report, also write the unmasked CSVs into ``unmasked/``.
    """
    from almatools.quality.run import DUPLICATE_COLUMNS, write_outputs

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    page = render_html(data)
    _atomic_write(out / "report.html", page.encode("utf-8"))
    written["report.html"] = out / "report.html"
    written["report.xlsx"] = write_xlsx(data, out / "report.xlsx")
    if not data.masked or unmasked_csv:
        if result is None:
            raise ReportError("the unmasked CSV files need the analysis result", step="writing the CSV files")
        raw = out if not data.masked else out / "unmasked"
        files = write_outputs(result, raw)
        raw_proposals = data.proposals if not data.masked else worklist.to_frame() if worklist is not None else None
        if raw_proposals is not None:
            write_csv(raw_proposals, raw / "merge_proposals.csv")
            files["merge_proposals.csv"] = raw / "merge_proposals.csv"
        written.update({(k if raw == out else f"unmasked/{k}"): v for k, v in files.items()})
    if data.masked:
        findings = data.findings[list(FINDING_COLUMNS)]
        write_csv(findings, out / "findings.csv")
        write_csv(data.clusters[[c for c in DUPLICATE_COLUMNS if c in data.clusters.columns]], out / "duplicates.csv")
        write_csv(data.proposals, out / "merge_proposals.csv")
        summary = dict(result.summary) if result is not None else {}
        summary["sources"] = data.summary["sources"]  # file names and counts, never the skipped records' values
        summary["masked"] = True
        _atomic_write(out / "summary.json", _json_bytes(summary, indent=2))
        _atomic_write(out / "summary.txt", (data.summary_text() + "\n").encode("utf-8"))
        for name in ("findings.csv", "duplicates.csv", "merge_proposals.csv", "summary.json", "summary.txt"):
            written[name] = out / name
    _atomic_write(out / KEYS_FILE, _json_bytes(data.keys, indent=None))
    written[KEYS_FILE] = out / KEYS_FILE
    _atomic_write(out / RUN_FILE, _json_bytes(data.entry))
    written[RUN_FILE] = out / RUN_FILE
    return written


# -- the pipeline ------------------------------------------------------------------------------------

@dataclass
class ReportOutcome:
    """What :func:`run_report` made.

    Attributes:
        folder: The run's folder (``root/2026-11-24T1030``; the temporary folder when not finished).
        files: The files written, by name.
        data: The report's data (counts, tables, summary text).
        sources: Where the users and the SIS extract came from, and how many records were read.
    """

    folder: Path
    files: dict[str, Path]
    data: ReportData
    sources: Any

    @property
    def entry(self) -> dict[str, Any]:
        """The run's record (``run.json``): its counts, as written to the history."""
        return json.loads((self.folder / RUN_FILE).read_text(encoding="utf-8"))


def run_report(output_root: str | os.PathLike[str] | None = None, *, users_source: str = "", sis_source: str = "",
               policy_path: str | os.PathLike[str] | None = None, title: str = "Patron data quality",
               period: str = "", today: date | str | None = None, mask_pii: bool = False,
               unmasked_csv: bool = False, find_duplicates: bool = True, top_n: int = 50,
               client: Any = None, progress: bool = False, run: ReportRun | None = None,
               finish: bool = True) -> ReportOutcome:
    """The whole data-quality report, as ``almatools report`` and notebook 04 run it.

    Reads the policy and the sources (:func:`almatools.sources.load_sources`), checks the records
    (:func:`almatools.quality.analyse`), prepares the merge proposals (:func:`merge_proposals`), builds
    and writes the report (:func:`build_report`, :func:`write_report`) into a temporary folder of the
    output root, and moves it into place (:func:`finish_run`). When any step fails the run is
    abandoned: nothing is left in the output root, and the :class:`ReportError` names the step and source.

    Args:
        output_root: The report folder (default: ``reports`` in the kit's data folder).
        users_source: Any user source, ``"api:"``, or empty for the sandbox's own users.
        sis_source: The SIS extract; empty: the sandbox's own with no users source, else none.
        policy_path: The policy file (default: ``ALMATOOLS_POLICY`` or the kit's default).
        title: The report's heading.
        period: Shown under the heading, e.g. ``"November 2026"``.
        today: The day the analysis is as of (a date or ``YYYY-MM-DD``; default today).
        mask_pii: Replace names, emails and identifiers by tokens.
        unmasked_csv: With ``mask_pii``: also write the unmasked CSV files (into ``unmasked/``).
        find_duplicates: Also run the duplicate linkage.
        top_n: Findings, clusters and merge pairs listed in the HTML.
        client: The Alma client; None connects (:func:`almatools.connect`) only when the users come
            from Alma or the sandbox, and closes it at the end.
        progress: Show progress bars.
        run: A run already started (:func:`start_run`); default: one is started here.
        finish: Move the run into place at the end (False leaves it to the caller).

    Raises:
        ReportError: A step failed (the message names it); the run was abandoned.
    """
    from almatools.policy import load_policy
    from almatools.quality import analyse
    from almatools.sources import load_sources

    run = run or start_run(output_root)
    own_client = None
    try:
        with step("reading the parameter today", today):
            as_of = date.fromisoformat(today) if isinstance(today, str) and today else (today or None)
        with step("reading the policy", policy_path or "the default policy"):
            policy = load_policy(policy_path or None)
        if client is None and (not users_source or str(users_source).strip().lower() == "api:"):
            import almatools

            with step("connecting to Alma"):
                client = own_client = almatools.connect()
        sources = load_sources(users_source, sis_source, policy=policy, client=client, progress=progress,
                               step=step)
        with step("checking the records"):
            result = analyse(sources.users, sources.sis, policy, today=as_of, duplicates=find_duplicates,
                             progress=progress)
        with step("preparing the merge proposals"):
            worklist = merge_proposals(result, sources.sis)
        with step("building the report", run.root):
            data = build_report(result, worklist, root=run.root, sis=sources.sis, mask=mask_pii, title=title,
                                period=period, top_n=top_n)
        with step("writing the report files", run.folder):
            files = write_report(data, run.folder, result=result, worklist=worklist, unmasked_csv=unmasked_csv)
        written = {name: Path(path).relative_to(run.folder) for name, path in files.items()}
        folder = finish_run(run) if finish else run.folder
    except BaseException:
        if run.folder.name.startswith(_TMP_PREFIX) or run.external:  # never a run already moved into place
            abandon_run(run)
        raise
    finally:
        if own_client is not None:
            own_client.close()
    return ReportOutcome(folder, {name: folder / path for name, path in written.items()}, data, sources)
