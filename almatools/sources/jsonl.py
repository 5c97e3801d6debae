"""JSON lines of Alma user objects: each line checked (text where Alma sends text) and made a row."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import IO, Any

from almatools.errors import SourceError
from almatools.models import RecordError
from almatools.quality.frame import (
    USER_COLUMNS,
    user_row,
)
from almatools.sources.base import MAX_FIELD_CHARS, MAX_RECORD_BYTES, _error_tuple

_TEXT_FIELDS = ("primary_id", "first_name", "middle_name", "last_name", "full_name", "external_id",
                "job_description", "birth_date", "expiry_date", "purge_date", "pin_number")
_CODE_FIELDS = ("user_group", "account_type", "status", "record_type", "preferred_language", "gender",
                "campus_code", "cataloger_level", "job_category", "user_title")
_LISTS = {"email": ("email_address",), "phone": ("phone_number",),
          "address": ("line1", "line2", "line3", "city", "postal_code", "state_province")}


def _check_text(value: Any, where: str) -> None:
    if value is None or isinstance(value, str):
        if value is not None and len(value) > MAX_FIELD_CHARS:
            raise RecordError(f"{len(value):,} characters, more than the limit of {MAX_FIELD_CHARS:,}", field=where)
        return
    kind = {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)
    raise RecordError(f"expected text, found {kind}", field=where)


def _check_user(user: dict[str, Any]) -> None:
    """Refuse what Alma never sends in a user object: a missing primary id, or a list, an object or a
    number where text belongs (they would otherwise become text such as ``['x']`` or ``inf``)."""
    pid = user.get("primary_id")
    if not isinstance(pid, str) or not pid.strip():
        raise RecordError("no primary id" if pid is None or pid == "" else
                          f"the primary id must be text, found {type(pid).__name__}", field="primary_id")
    for name in _TEXT_FIELDS:
        _check_text(user.get(name), name)
    for name in _CODE_FIELDS:
        value = user.get(name)
        if isinstance(value, dict):
            _check_text(value.get("value"), f"{name}/value")
        elif value is not None:
            _check_text(value, name)
    for name in ("user_identifier", "user_role", "user_statistic"):
        items = user.get(name)
        if items is not None and not isinstance(items, list | dict):
            raise RecordError("expected a list", field=name)
    contact = user.get("contact_info")
    if contact is None:
        return
    if not isinstance(contact, dict):
        raise RecordError("expected an object", field="contact_info")
    for kind, keys in _LISTS.items():
        items = contact.get(kind)
        if items is None:
            continue
        items = [items] if isinstance(items, dict) else items
        if not isinstance(items, list):
            raise RecordError("expected a list", field=f"contact_info/{kind}")
        for k, item in enumerate(items, 1):
            if isinstance(item, dict):
                for key in keys:
                    _check_text(item.get(key), f"contact_info/{kind}[{k}]/{key}")


def _json_row(line: bytes, ptype: str) -> tuple[Any, ...]:
    try:
        user = json.loads(line)
    except ValueError as err:
        raise RecordError(f"not JSON ({err})") from None
    except RecursionError:  # the C parser stops at Python's recursion limit: report, never crash
        raise RecordError("JSON nested too deeply to be an Alma user") from None
    if not isinstance(user, dict):
        raise RecordError(f"expected an Alma user object, found {type(user).__name__}")
    _check_user(user)
    try:
        row = user_row(user, patron_type_category_type=ptype)
    except (AttributeError, TypeError, ValueError, RecursionError) as err:
        raise RecordError(f"not an Alma user object ({err.__class__.__name__})") from None
    return tuple(row[c] for c in USER_COLUMNS)


def _capped_lines(fh: IO[bytes], start: int, end: int | None) -> Iterator[tuple[int, bytes | None]]:
    """The lines that start in ``[start, end)``, as (bytes consumed, line); a line longer than
    :data:`MAX_RECORD_BYTES` is read past in chunks and given as None (memory stays bounded)."""
    fh.seek(start)
    pos = start
    while end is None or pos < end:
        line = fh.readline(MAX_RECORD_BYTES + 1)
        if not line:
            return
        used = len(line)
        if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
            while True:  # skip the rest of the overlong line
                more = fh.readline(1 << 20)
                used += len(more)
                if not more or more.endswith(b"\n"):
                    break
            yield used, None
        else:
            yield used, line
        pos += used


def _jsonl_rows(path: str, name: str, ptype: str, start: int = 0, end: int | None = None,
                tick: Callable[[int], None] | None = None) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """Rows of the lines that start in ``[start, end)``; record numbers are lines counted from ``start``."""
    rows: list[tuple[Any, ...]] = []
    errors: list[tuple[Any, ...]] = []
    n = 0
    try:
        with open(path, "rb") as fh:
            pos = start
            for used, line in _capped_lines(fh, start, end):
                pos += used
                n += 1
                if line is None:
                    errors.append(_error_tuple(RecordError(
                        f"the line is longer than {MAX_RECORD_BYTES >> 20} MiB, the limit for one record",
                        file=name, record=n, line=n)))
                    continue
                if not line.strip():
                    continue
                try:
                    rows.append(_json_row(line, ptype))
                except RecordError as err:
                    errors.append(_error_tuple(err.located(file=name, record=n, line=n)))
                if tick is not None and n % 5000 == 0:
                    tick(pos - start)
    except OSError as err:
        raise SourceError(f"{name} cannot be read: {err}") from None
    return rows, errors, n
