"""Searching Alma's users: the ``q`` parameter (:func:`build_q`) and the lazy, paged :class:`UserSearch`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from almatools.client import AlmaClient

from collections.abc import Iterator
from typing import Any

from almatools.errors import (
    AlmaError,
    ConfigError,
)
from almatools.pacing import _ordered_map

# Fields Alma's `q` parameter accepts on GET /users (Users OpenAPI spec).
__all__ = ["SEARCH_FIELDS", "UserSearch", "build_q"]

SEARCH_FIELDS = frozenset({
    "primary_id", "first_name", "last_name", "middle_name", "email", "phone_number", "job_category",
    "identifiers", "birth_date", "user_group", "campus_code", "block_type", "id_type", "note_text",
    "note_type", "statistic_category", "fines_fees_sum", "general_info", "ALL",
})


def build_q(*clauses: tuple[str, str], **fields: str) -> str:
    """Build Alma's ``q`` search expression: ``field~words`` clauses joined by `` AND ``.

    Values are made safe for Alma's parser: whitespace runs become ``_`` (encoded spaces have caused
    HTTP 400 in Alma), and ``~`` and the word ``AND`` inside a value cannot start a new clause.

    Args:
        *clauses: ``(field, value)`` pairs, in order.
        **fields: more clauses as keywords, e.g. ``last_name="Smith"``.

    Returns:
        e.g. ``"last_name~Smith AND first_name~Mary_Ann"``.

    Raises:
        ConfigError: an unknown field, an empty value, or ``ALL`` combined with another clause.
    """
    pairs = [*clauses, *fields.items()]
    if not pairs:
        raise ConfigError("A search needs at least one field and value.")
    parts = []
    for name, value in pairs:
        if name not in SEARCH_FIELDS:
            raise ConfigError(f"Alma cannot search the field {name!r}; use one of {', '.join(sorted(SEARCH_FIELDS))}.")
        words = [w for w in str(value).replace("~", " ").split() if w.upper() != "AND"]
        if not words:
            raise ConfigError(f"The search value for {name} is empty.")
        parts.append(f"{name}~{'_'.join(words)}")
    if len(parts) > 1 and any(p.startswith("ALL~") for p in parts):
        raise ConfigError("Alma's ALL search cannot be combined with other fields; search general_info instead.")
    return " AND ".join(parts)


class UserSearch:
    """A lazy ``GET /users`` search: :meth:`records`, :meth:`to_frame`, :meth:`count`.

    Paging copes with Alma's quirks: it pages until a page comes back empty (``total_record_count`` can
    overstate what is there, or be -1 for a query Alma could not handle), and it drops a user seen on an
    earlier page (offset paging over a changing base can repeat one).
    """

    def __init__(self, client: AlmaClient, *, q: str | None, order_by: str | None, page_size: int,
                 max_records: int | None) -> None:
        if not 1 <= page_size <= 100:
            raise ConfigError(f"page_size must be 1 to 100 (Alma's limit), not {page_size}.")
        self.client = client
        self.q = q
        self.order_by = order_by
        self.page_size = page_size
        self.max_records = max_records

    def __repr__(self) -> str:
        return f"UserSearch(q={self.q!r})"

    def _params(self, limit: int, offset: int) -> dict[str, Any]:
        return {"q": self.q, "order_by": self.order_by, "limit": limit, "offset": offset}

    def count(self) -> int:
        """Alma's ``total_record_count`` (one call; -1 when Alma could not run the query)."""
        body = self.client.request("GET", "/users", params=self._params(0, 0)) or {}
        return int(body.get("total_record_count") or 0)

    def _page(self, offset: int) -> list[dict]:
        body = self.client.request("GET", "/users", params=self._params(self.page_size, offset)) or {}
        page = body.get("user") or []
        return [page] if isinstance(page, dict) else page

    def records(self) -> Iterator[dict]:
        """Brief user entries, page by page (primary_id, names, status and a link; no emails or identifiers).

        The first page tells ``total_record_count``; the later pages are then fetched concurrently (in
        order, within the throttle) and paging stops at the count: 30 calls for 3,000 users. Because
        the count can overstate what Alma returns, an empty page also ends it; when the count is -1
        (a query Alma could not run) or missing, pages are read one by one until an empty one.
        """
        seen: set[str] = set()
        yielded = 0

        def fresh(page: list[dict]) -> Iterator[dict]:
            nonlocal yielded
            for entry in page:
                key = str(entry.get("primary_id", "")).lower()
                if key in seen:
                    continue  # offset paging over a changing base can repeat a user
                seen.add(key)
                yield entry
                yielded += 1
                if self.max_records is not None and yielded >= self.max_records:
                    return

        def done() -> bool:
            return self.max_records is not None and yielded >= self.max_records

        body = self.client.request("GET", "/users", params=self._params(self.page_size, 0)) or {}
        first = body.get("user") or []
        first = [first] if isinstance(first, dict) else first
        yield from fresh(first)
        if not first or done():
            return
        total = body.get("total_record_count")
        if isinstance(total, int) and total >= 0:
            end = total if self.max_records is None else min(total, self.max_records)
            offsets = range(len(first), end, self.page_size)
            pages = _ordered_map(self._page, offsets, workers=self.client.workers,
                                 in_flight=self.client.workers, buffered=4 * self.client.workers)
            try:
                for _, page in pages:
                    if isinstance(page, AlmaError):
                        raise page
                    yield from fresh(page)
                    if not page or done():  # the count overstated what Alma holds
                        return
            finally:
                pages.close()
            return
        offset = len(first)
        while not done():
            page = self._page(offset)
            if not page:
                return
            offset += len(page)
            yield from fresh(page)

    def __iter__(self) -> Iterator[dict]:
        return self.records()

    def to_frame(self):
        """The brief entries as a pandas DataFrame."""
        import pandas as pd

        columns = ["primary_id", "first_name", "last_name", "status", "link"]
        rows = [{c: (e.get(c).get("value") if isinstance(e.get(c), dict) else e.get(c)) for c in columns}
                for e in self.records()]
        return pd.DataFrame(rows, columns=columns)
