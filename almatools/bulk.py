"""Bulk registration from a CSV file, with a journal that makes every run resumable.

A run validates every row first and writes the problems to ``<name>.issues.csv`` (row, field, message),
then creates the valid rows. The journal ``<name>.journal.jsonl`` records, per row, "sending" before a
POST and "created" after Alma confirmed it. A re-run after any interruption (a killed process, a lost
network, the day's API calls used up) skips the rows already created; a row left at "sending" is looked
up in Alma before anything is sent again, so nobody is created twice. Journal entries are keyed by
primary identifier, so rows may be reordered or added between runs; two rows with one identifier are
refused as invalid. A dry run keeps its own journal (``<name>.dry-run.journal.jsonl``).

Every row goes through the same search and decision as the form and :func:`~almatools.registration.register`
(:func:`~almatools.registration.decide`): a person who already has an account is not created again. The
row is reported with what to do (renew, update, add the role), and with ``renew=True`` (``--renew``) an
offered renewal is done (new expiry and purge date from the group's defaults). A former affiliate moving
to a new affiliation gets a new account and a merge request old -> new in ``merge_requests.csv`` beside
the journal (the file the merge worklist reads). An empty expiry date is the group's default; the
affiliation may be given by key (``friend``) or by label (``Friend of the Library``).

The journal and the issue file hold row numbers, primary identifiers and outcomes only. Passwords from
the CSV are used once to create the account and are never written anywhere.

CSV columns (header names; only ``affiliation`` or ``user_group`` and the policy's mandatory fields are
needed): affiliation, first_name, middle_name, last_name, primary_id, user_group, managed (sis|local),
expiry_date, purge_date, birth_date (YYYY-MM-DD), email_address, email_type, phone_number, password,
force_password_change (yes|no), note, and ``identifier_<TYPE>`` (e.g. ``identifier_UNIV_ID``) for the
identifier types the policy describes. ``examples/registration.csv`` is a sample for the default policy.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from almatools.errors import (
    AlmaConnectionError,
    AlmaError,
    AuthError,
    JournalError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
    SourceError,
)
from almatools.files import (
    AppendLog,
    atomic_path,
    csv_column_names,
    csv_hint,
    csv_records,
    first_non_utf8_line,
    safe_cell,
)
from almatools.normalise import email_key, fold, given_name, is_email, surname_key
from almatools.policy import Policy
from almatools.registration import (
    IDENTIFIER_PREFIX,
    Issue,
    PatronForm,
    explain_alma_error,
    find_existing,
    record_merge_request,
    renew,
    validate,
)

__all__ = ["BulkResult", "register_csv", "CSV_COLUMNS", "CALLS_PER_ROW"]

log = logging.getLogger(__name__)

CSV_COLUMNS = ("affiliation", "first_name", "middle_name", "last_name", "primary_id", "user_group", "managed",
               "expiry_date", "purge_date", "birth_date", "email_address", "email_type", "phone_number", "password",
               "force_password_change", "note")
CALLS_PER_ROW = 6  # identifier lookup, email, name and birth-date searches, POST, confirming GET (+ a full record per hit)
ISSUE_COLUMNS = ("row", "primary_id", "field", "severity", "rule", "message")


@dataclass
class BulkResult:
    """What a run did. ``stopped`` says why it stopped early or left rows to retry (re-run to resume), or is empty."""

    rows: int = 0
    invalid: int = 0
    created: int = 0
    already_done: int = 0
    refused: int = 0
    renewed: int = 0  # existing accounts renewed instead of created (renew=True)
    merge_requests: int = 0  # merge requests old -> new recorded for former affiliates
    failed: int = 0  # rows that met a passing fault (5xx, throttling) after all retries: a re-run retries them
    stopped: str = ""
    issues_path: Path | None = None
    journal_path: Path | None = None
    calls: int = 0
    outcomes: dict[int, str] = field(default_factory=dict)
    merge_requests_path: Path | None = None

    @property
    def complete(self) -> bool:
        """True when every valid row was sent and answered (created, or refused for a reason to fix)."""
        return not self.stopped


def _key(primary_id: str) -> str:
    return primary_id.casefold()  # Alma treats primary ids case-insensitively


class _Journal:
    """The run's journal (:class:`almatools.files.AppendLog`: fsynced per entry, the kit's torn-tail policy).

    Entries are keyed by primary identifier (not by row number), so a CSV whose rows were reordered or
    inserted between runs still resumes correctly. A row whose last entry was torn off by a crash is
    looked up again.

    Raises:
        JournalError: a line before the end is damaged (the file and line are named).
    """

    def __init__(self, path: Path) -> None:
        self.log = AppendLog(path, sort_keys=False)
        self.path = path
        self.state: dict[str, dict[str, Any]] = {}
        for number, entry in self.log.numbered():
            if not isinstance(entry.get("primary_id"), str) or not entry["primary_id"]:
                raise JournalError(f"{path}: line {number} names no primary_id; fix or remove that line (or "
                                   "delete the journal to start the file afresh).", path=path, line=number)
            lacking = next((k for k in ("status", "fingerprint") if not isinstance(entry.get(k), str)), None)
            if lacking is not None:  # a line edited by hand: the run would trip over it half-way through
                raise JournalError(f"{path}: line {number} has no {lacking!r} as the kit writes it; fix or remove "
                                   "that line (or delete the journal to start the file afresh).", path=path,
                                   line=number)
            entry.setdefault("message", "")
            self.state[_key(entry["primary_id"])] = entry
        self.log.repair()
        self._lock = threading.Lock()

    def get(self, primary_id: str) -> dict[str, Any] | None:
        return self.state.get(_key(primary_id))

    def write(self, row: int, primary_id: str, fingerprint: str, status: str, message: str = "") -> None:
        entry = {"row": row, "primary_id": primary_id, "fingerprint": fingerprint, "status": status,
                 "message": message, "at": datetime.now().astimezone().isoformat(timespec="seconds")}
        with self._lock:
            self.log.append(entry)
            self.state[_key(primary_id)] = entry

    def close(self) -> None:
        """Nothing stays open between entries; kept so a run's ``finally`` reads the same."""


def _fingerprint(row: dict[str, str]) -> str:
    """A hash of the row without its password, to notice a CSV edited between runs."""
    data = json.dumps({k: v for k, v in sorted(row.items()) if k != "password"}, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _scrub(message: str, row: dict[str, str]) -> str:
    """A message with the row's password masked, in case an error text ever quotes it."""
    secret = row.get("password") or ""
    return message.replace(secret, "***") if secret else message


def _names_match(stored: dict[str, Any], record: dict[str, Any]) -> bool:
    def norm(r: dict[str, Any], key: str) -> str:
        return " ".join(str(r.get(key) or "").split()).casefold()
    return all(norm(stored, k) == norm(record, k) for k in ("first_name", "last_name"))


_SAME_PERSON = {"email_address": "the same email address", "birth_date": "the same name and birth date"}


def _person_keys(form: PatronForm) -> list[tuple[str, tuple[str, ...]]]:
    """What makes two rows of one file the same person, as the search for existing accounts judges it
    (:mod:`almatools.registration.existing`): the email address, or the name and the birth date."""
    keys: list[tuple[str, tuple[str, ...]]] = []
    if form.email_address and is_email(form.email_address):
        keys.append(("email_address", ("email", email_key(form.email_address))))
    birth = str(form.birth_date or "").strip()
    last, given = surname_key(form.last_name), given_name(form.first_name)
    if birth and last and given:
        keys.append(("birth_date", ("name", last, fold(given), birth)))
    return keys


_UNREADABLE = "\0unreadable"  # key of a row the reader could not take: its value says why


def _read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a registration CSV, streamed with the limits of :func:`almatools.files.csv_records` (a
    line of at most 1 MiB, a cell of at most 100,000 characters). A row over them, or with more cells than
    the header has columns, comes back as ``{_UNREADABLE: reason}`` and is reported, never sent."""
    rows: list[dict[str, str]] = []
    header = False
    rename: dict[str, str] = {}
    try:
        for n, rec in csv_records(path):
            if n == 0:
                header = True
                columns = [c for c in rec if c]
                if not columns:
                    raise SourceError(f"{path} is empty: it needs a header row with columns such as "
                                      f"{', '.join(CSV_COLUMNS[:5])}.")
                # "First Name" or "FIRST_NAME" typed over the template's header reads as first_name
                rename = csv_column_names(path, columns, CSV_COLUMNS)
                named = [rename.get(c, c) for c in columns]
                unknown = [c for c in named if c not in CSV_COLUMNS and not c.lower().startswith(IDENTIFIER_PREFIX)]
                if unknown:
                    hint = csv_hint(path, columns)
                    raise SourceError(f"{path}: unknown column {unknown[0][:60]!r}; " + (
                        f"{hint}." if hint else f"the columns are {', '.join(CSV_COLUMNS)}, and {IDENTIFIER_PREFIX}"
                        "<TYPE> for an identifier type of the policy."))
                continue
            if isinstance(rec, str):
                rows.append({_UNREADABLE: rec})
            else:
                rows.append({rename.get(k, k): (v or "").strip() for k, v in rec.items() if k})
    except FileNotFoundError as exc:
        raise SourceError(f"The CSV file {path} does not exist.") from exc
    except UnicodeDecodeError as exc:
        hint = csv_hint(path) or "save it from your spreadsheet as 'CSV UTF-8 (Comma delimited)'"
        line = first_non_utf8_line(path)
        where = f" (line {line:,} holds bytes that are not UTF-8)" if line and not csv_hint(path) else ""
        raise SourceError(f"{path} is not UTF-8 text{where}: {hint}.") from exc
    except csv.Error as exc:
        raise SourceError(f"{path} is not a readable CSV file: {exc}.") from exc
    if not header:
        raise SourceError(f"{path} is empty: it needs a header row with columns such as "
                          f"{', '.join(CSV_COLUMNS[:5])}, and a row per patron.")
    return rows


def register_csv(client, csv_path: str | Path, policy: Policy, *, out_dir: str | Path | None = None,
                 today: date | None = None, workers: int = 8, progress: bool = False,
                 reserve: int = 500, on_row: Callable[[int, str], None] | None = None, renew_existing: bool = False,
                 merge_requests: str | Path | None = None, sis_ids: Collection[str] | None = None) -> BulkResult:
    """Validate and create every patron of a CSV file; resumable (see the module docstring).

    Args:
        client: an :class:`~almatools.client.AlmaClient` (a dry-run client validates and plans only; it
            keeps its own journal, ``<name>.dry-run.journal.jsonl``, so a real run afterwards starts afresh).
        csv_path: the CSV file.
        policy: the institution's policy.
        out_dir: where the journal and issue file go (default: beside the CSV).
        today: the date validation judges by.
        workers: rows sent at once (the client's throttle still paces the calls).
        progress: show a progress bar.
        reserve: API calls to leave for the rest of the day.
        on_row: called with (row number, outcome) after each row (for progress in a notebook); it may be
            called from worker threads.
        renew_existing: renew a person's existing account when the decision offers it, instead of only
            reporting it.
        merge_requests: the merge-request CSV for former affiliates (default ``merge_requests.csv`` in the
            output folder).
        sis_ids: the primary identifiers of the current SIS extract
            (:func:`~almatools.registration.sis_identifiers`): a row the SIS load will bring is sent only as
            SIS-managed under that identifier; as a locally managed record it is refused.

    Raises:
        SourceError: the CSV cannot be read.
        QuotaExhaustedError: the run needs more calls than today has left; nothing was sent.
    """
    path = Path(csv_path)
    rows = _read_rows(path)
    folder = Path(out_dir) if out_dir else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    journal_name = f"{path.stem}.dry-run.journal.jsonl" if client.dry_run else f"{path.stem}.journal.jsonl"
    result = BulkResult(rows=len(rows), issues_path=folder / f"{path.stem}.issues.csv",
                        journal_path=folder / journal_name,
                        merge_requests_path=Path(merge_requests) if merge_requests else folder / "merge_requests.csv")
    journal = _Journal(result.journal_path)
    start_calls = client.calls
    refused: list[tuple[int, str, str]] = []
    try:
        todo: list[tuple[int, dict[str, str], Any]] = []
        first_row: dict[str, int] = {}
        first_person: dict[tuple[str, ...], tuple[int, str]] = {}
        # Written beside its name and renamed when validation is done: a run stopped half-way (Ctrl-C)
        # leaves the last complete issue file, never a cut one that looks complete.
        with atomic_path(result.issues_path) as issues_tmp, issues_tmp.open("w", newline="", encoding="utf-8") as handle:
            issues = csv.writer(handle)
            issues.writerow(ISSUE_COLUMNS)
            for number, row in enumerate(rows, start=2):  # row 1 is the header, as a spreadsheet shows it
                if _UNREADABLE in row:
                    issues.writerow([number, "", "", "error", "UNREADABLE_ROW", safe_cell(row[_UNREADABLE])])
                    result.invalid += 1
                    result.outcomes[number] = "invalid"
                    continue
                checked = validate(PatronForm.from_mapping(row), policy, today=today)
                pid = checked.form.primary_id
                found = list(checked.issues)
                if pid and _key(pid) in first_row:
                    found.append(Issue.of("DUPLICATE_IN_FILE", "primary_id",
                                       f"Row {first_row[_key(pid)]} has the same primary identifier: one person gets "
                                       "one account. Remove or correct one of the two rows."))
                elif pid:
                    first_row[_key(pid)] = number
                    # The same person under two identifiers in one file: the search before each POST cannot
                    # see it (the rows are sent at once), so the file is checked against itself first.
                    for field, person in (_person_keys(checked.form) if checked.ok else ()):
                        if person in first_person:
                            earlier, why = first_person[person], _SAME_PERSON[field]
                            found.append(Issue.of("DUPLICATE_IN_FILE", field,
                                               f"Row {earlier[0]} ({earlier[1]}) has {why}: it is the same person. "
                                               "One person gets one account: remove this row, or correct it if "
                                               "it is someone else."))
                            break
                    else:
                        if checked.ok:  # a row that is not sent cannot be the person's account
                            for _, person in _person_keys(checked.form):
                                first_person.setdefault(person, (number, pid))
                for issue in found:
                    if issue.severity != "info":
                        issues.writerow([safe_cell(v) for v in (number, pid, issue.field, issue.severity, issue.rule,
                                                                _scrub(issue.message, row))])
                done = journal.get(pid) if pid else None
                if not checked.ok or any(i.rule == "DUPLICATE_IN_FILE" for i in found):
                    result.invalid += 1
                    result.outcomes[number] = "invalid"
                elif done and done["status"] in ("created", "renewed"):
                    result.already_done += 1
                    result.outcomes[number] = done["status"]
                elif (done and done["fingerprint"] == _fingerprint(row)
                      and (done["status"] == "refused" or (done["status"] == "exists" and not renew_existing))):
                    # refused in an earlier run and unchanged since: report it again, do not resend
                    refused.append((number, pid, done["message"]))
                    result.outcomes[number] = done["status"]
                else:
                    todo.append((number, row, checked))
        if todo:
            # Ask afresh: a count cached by a long-lived client (a notebook) may be from yesterday's last call.
            client.refresh_remaining()
            client.check_budget(len(todo) * CALLS_PER_ROW, reserve=reserve)
            _send(client, todo, journal, result, refused, workers=workers, progress=progress, on_row=on_row,
                  policy=policy, today=today, renew_existing=renew_existing, sis_ids=sis_ids)
        result.refused = len(refused)
        if refused:
            with result.issues_path.open("a", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                for number, pid, message in sorted(refused):
                    writer.writerow([safe_cell(v) for v in (number, pid, "primary_id", "error", "ALMA_REFUSED", message)])
        return result
    finally:
        result.calls = client.calls - start_calls
        journal.close()


def _send(client, todo, journal: _Journal, result: BulkResult, refused: list, *, workers: int, progress: bool,
          on_row, policy: Policy, today: date | None, renew_existing: bool,
          sis_ids: Collection[str] | None = None) -> None:
    """Create the rows of ``todo`` concurrently; stop all on a lost network or an exhausted quota."""
    stop = threading.Event()
    lock = threading.Lock()

    def one(number: int, row: dict[str, str], checked) -> None:
        if stop.is_set():
            return
        pid = checked.form.primary_id
        fingerprint = _fingerprint(row)
        previous = journal.get(pid)
        message = ""
        try:
            outcome = ""
            if previous and previous["status"] == "sending":
                existing = client.find_user(pid)
                if existing is not None and _names_match(existing, checked.record):
                    outcome = "created"  # our own POST of an earlier run arrived before the interruption
                    journal.write(number, pid, fingerprint, outcome, "confirmed after an interrupted run")
            if not outcome:
                # The same search and decision as the form and register(): nobody gets a second account.
                decision = find_existing(client, checked.form, policy, today=today, sis_ids=sis_ids).decision
                if decision.blocked and decision.action == "renew" and renew_existing:
                    done = renew(client, decision.target, policy, today=today)
                    if done.status in ("renewed", "unchanged", "planned"):  # planned: a dry run's renewal
                        outcome = "renewed"
                        journal.write(number, pid, fingerprint, outcome, done.message)
                        with lock:
                            result.renewed += 1
                    else:
                        outcome, message = "refused", done.message
                elif decision.blocked:
                    outcome = "exists" if decision.action in ("renew", "update", "add_role") else "refused"
                    message = decision.reason
                    if decision.action == "renew":
                        message += " Run again with --renew (renew_existing=True) to renew it."
                else:
                    if not client.dry_run:
                        journal.write(number, pid, fingerprint, "sending")
                    client.create_user(checked.record)
                    if not client.dry_run:
                        client.get_user(pid)
                        for old in decision.merge_from:
                            with lock:  # one writer at a time: the file's header is written once
                                record_merge_request(result.merge_requests_path, old, pid, "old account of the same "
                                                     "person; new account for the new affiliation")
                                result.merge_requests += 1
                    outcome = "created" if not client.dry_run else "planned"
                    journal.write(number, pid, fingerprint, outcome,
                                  f"merge request {', '.join(decision.merge_from)} -> {pid}" if decision.merge_from else "")
        except (QuotaExhaustedError, AlmaConnectionError, AuthError) as exc:
            # The network, the day's calls or the key's rights are gone: every other row would fail the
            # same way. Nothing is journaled as refused (a refused row is never sent again), so the same
            # command resumes once the cause is fixed, e.g. with a key that may write.
            stop.set()
            with lock:
                if not result.stopped:
                    result.stopped = f"{explain_alma_error(exc)} Run the same command again to resume."
            return
        except (ServerError, RateLimitError) as exc:
            # A passing fault that outlived the client's retries. The journal still says "sending" (if the
            # POST went out), so the re-run looks the patron up before sending anything again.
            log.warning("row %d (%s): %s; a re-run retries it", number, pid, type(exc).__name__)
            outcome = "failed"
        except AlmaError as exc:
            outcome = "refused"
            message = explain_alma_error(exc, checked.record)
        if outcome in ("exists", "refused"):
            message = _scrub(message, row)
            journal.write(number, pid, fingerprint, outcome, message)
            with lock:
                refused.append((number, pid, message))
        with lock:
            result.outcomes[number] = outcome
            if outcome in ("created", "planned"):
                result.created += 1
            elif outcome == "failed":
                result.failed += 1
        if on_row:
            on_row(number, outcome)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="registering", unit="patron")
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="register") as pool:
        for _ in pool.map(lambda item: one(*item), todo):
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    if result.failed and not result.stopped:
        result.stopped = (f"{result.failed} rows met a passing Alma fault after every retry. Run the same command "
                          "again to retry them; nobody is created twice.")
