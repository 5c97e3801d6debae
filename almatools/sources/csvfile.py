"""A users CSV with the patron table's columns (:data:`CSV_COLUMNS`), streamed with limits."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from almatools.errors import SourceError
from almatools.files import csv_column_names, csv_hint, csv_records, first_non_utf8_line
from almatools.models import RecordError
from almatools.quality.frame import (
    USER_COLUMNS,
    _date,
    _text,
    address_entry,
    digits,
    joined,
    normalise_identifier,
    rows_frame,
)
from almatools.sources.base import CSV_COLUMNS, LoadReport


def _csv_frame(path: Path, report: LoadReport, bad: Callable[[RecordError], None]) -> pd.DataFrame:
    """A users CSV, streamed (memory grows with the rows kept, not the file); bad rows are reported."""
    rows = []
    rename: dict[str, str] = {}
    try:
        for n, rec in csv_records(path):
            if n == 0:
                columns = list(rec)
                rename = csv_column_names(path, columns, CSV_COLUMNS)
                named = [rename.get(c, c) for c in columns]
                if "primary_id" not in named:
                    hint = csv_hint(path, columns) or "the first row must name the columns, one of them primary_id"
                    raise SourceError(f"{path} is not a users CSV: it has no primary_id column (it has "
                                      f"{', '.join(c[:40] for c in columns[:30])}); {hint}")
                ignored = [c for c in columns if rename.get(c, c) not in CSV_COLUMNS]
                if ignored:
                    report.notes.append(f"columns ignored: {', '.join(c[:40] for c in ignored[:30])}")
                continue
            if isinstance(rec, str):
                bad(RecordError(rec, file=str(path), record=n))
                continue
            if rename:
                rec = {rename.get(k, k): v for k, v in rec.items()}
            try:
                if not rec.get("primary_id", "").strip():
                    raise RecordError("no primary id", field="primary_id")
                rows.append(_csv_row(rec))
            except RecordError as err:
                bad(err.located(file=str(path), record=n))
    except UnicodeDecodeError as err:
        hint = csv_hint(path) or "save it from your spreadsheet as 'CSV UTF-8 (Comma delimited)'"
        line = first_non_utf8_line(path)
        where = f"line {line:,} holds bytes that are not UTF-8" if line else err.reason
        raise SourceError(f"{path} is not a readable CSV file: it is not UTF-8 text ({where}); {hint}") from None
    except csv.Error as err:
        raise SourceError(f"{path} is not a readable CSV file: {err}") from None
    return rows_frame(rows)


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(";") if v.strip()]


def _csv_row(rec: dict[str, str]) -> tuple[Any, ...]:
    def get(name: str) -> str:
        return rec.get(name, "") or ""
    out: dict[str, Any] = {c: _text(get(c)) for c in ("primary_id", "first_name", "middle_name", "last_name",
                                                      "external_id", "line1", "city", "postal_code")}
    out.update({c: get(c).strip() for c in ("user_group", "account_type", "status", "record_type", "patron_type")})
    bad = []
    for name in ("expiry_date", "purge_date", "birth_date"):
        out[name], ok = _date(get(name))
        if not ok:
            bad.append(name)
    out["bad_dates"] = ";".join(bad)
    emails = [e.lower() for e in _split(get("emails"))]
    out["email"] = _text(get("email")).lower() or (emails[0] if emails else "")
    out["emails"] = ";".join(sorted(set(emails) | ({out["email"]} - {""})))
    out["email_types"] = ";".join(sorted(set(_split(get("email_types")))))
    out["phone"] = digits(get("phone"))
    out["pref_first_name"] = _text(get("pref_first_name"))
    out["phones"] = joined([*(digits(p) for p in _split(get("phones"))), out["phone"]])
    entries = [address_entry(*a.partition("|")[::2]) for a in _split(get("addresses"))]
    out["addresses"] = joined([*entries, address_entry(out["line1"], out["postal_code"])])
    idents = _split(get("identifiers"))
    out["identifiers"] = ";".join(sorted(idents))
    values = {normalise_identifier(out["primary_id"])} | {normalise_identifier(i.partition("=")[2]) for i in idents}
    out["identifier_values"] = ";".join(sorted(values - {""}))
    roles = sorted(set(_split(get("roles"))))
    out["roles"] = ";".join(roles)
    flag = get("staff_role").strip().lower()
    out["staff_role"] = flag in ("true", "1", "yes") if flag else any(r != "200" for r in roles)
    out["statistics"] = ";".join(sorted(set(_split(get("statistics")))))
    for name, default in (("email_count", len(out["emails"].split(";")) if out["emails"] else 0),
                          ("preferred_emails", 1 if out["emails"] else 0)):
        value = get(name).strip()
        if value and not value.isdigit():
            raise RecordError(f"not a whole number: {value!r}", field=name)
        out[name] = int(value) if value else default
    for name in ("loans", "requests", "fees"):
        value = get(name).strip()
        try:
            out[name] = float(value) if value else 0.0
        except ValueError:
            raise RecordError(f"not a number: {value!r}", field=name) from None
    return tuple(out[c] for c in USER_COLUMNS)
