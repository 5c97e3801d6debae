"""What every reader shares: the load report of a table, the limits, the bad-record callback type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from almatools.models import RecordError
from almatools.quality.frame import (
    USER_COLUMNS,
)

OnError = Callable[[RecordError], None] | Literal["raise", "skip"] | None
CSV_COLUMNS = tuple(c for c in USER_COLUMNS if c not in ("bad_dates", "identifier_values"))
"""Columns a users CSV may have (the patron table's; ``primary_id`` is the only one required). Missing
ones are derived or left empty: ``email`` is the first of ``emails``, ``email_count`` and
``preferred_emails`` are counted from them, ``staff_role`` comes from ``roles``."""
_KEPT_ERRORS = 100  # errors kept in a report (all are counted, and all go to on_error)


MAX_RECORD_BYTES = 16 << 20
"""The most one record may take: one ``<user>`` element of XML, one line of JSON lines, one line of CSV."""
MAX_FIELD_CHARS = 100_000
"""The most characters one field (a CSV cell, a JSON text value) may hold; a longer one makes its record bad."""
MAX_ZIP_MEMBERS = 100_000
"""The most ``.xml`` files a zip may hold."""


@dataclass
class LoadReport:
    """What a load read and what it skipped.

    Attributes:
        source: The source as given.
        kind: ``xml``, ``zip``, ``jsonl``, ``csv`` or ``api``.
        files: The files (zip members as ``archive.zip:member.xml``) read.
        records: Records read into the table.
        skipped: Bad records skipped.
        errors: The first 100 skipped records' errors (file, record, field, reason); ``on_error``
            sees them all.
        seconds: How long the load took.
        notes: Anything else worth saying (ignored CSV columns, API calls…).
    """

    source: str
    kind: str
    files: list[str] = field(default_factory=list)
    records: int = 0
    skipped: int = 0
    errors: list[RecordError] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def add_error(self, err: RecordError) -> None:
        """Count a skipped record and keep its error (the first 100)."""
        self.skipped += 1
        if len(self.errors) < _KEPT_ERRORS:
            self.errors.append(err)

    def summary(self) -> str:
        """One line: how many records were read and skipped, from how many files, in how long."""
        text = f"{self.source}: {self.records:,} records from {len(self.files)} file(s) in {self.seconds:.1f} s"
        return text + (f"; {self.skipped:,} bad records skipped" if self.skipped else "")

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (what ``frame.attrs["load_report"]`` holds)."""
        return {"source": self.source, "kind": self.kind, "files": list(self.files), "records": self.records,
                "skipped": self.skipped, "seconds": round(self.seconds, 3), "notes": list(self.notes),
                "errors": [{"file": e.file, "record": e.record, "line": e.line, "field": e.field, "reason": e.reason}
                           for e in self.errors]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadReport:
        """The report from :meth:`to_dict`'s data."""
        errors = [RecordError(e["reason"], file=e["file"], record=e["record"], field=e["field"], line=e["line"])
                  for e in data.get("errors", [])]
        return cls(data["source"], data["kind"], list(data.get("files", [])), data.get("records", 0),
                   data.get("skipped", 0), errors, data.get("seconds", 0.0), list(data.get("notes", [])))


def load_report(frame: pd.DataFrame) -> LoadReport | None:
    """The :class:`LoadReport` of a table made by :func:`load_users` or :func:`load_sis` (None otherwise)."""
    data = frame.attrs.get("load_report")
    return LoadReport.from_dict(data) if isinstance(data, dict) else None


def _error_tuple(err: RecordError) -> tuple[Any, ...]:  # RecordError does not pickle its fields
    return err.reason, err.file, err.record, err.field, err.line


def _error_of(t: tuple[Any, ...]) -> RecordError:
    reason, file, record, fld, line = t
    return RecordError(reason, file=file, record=record, field=fld, line=line)
