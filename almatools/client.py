"""AlmaClient: the one place that sends HTTP to Alma (or to the local sandbox).

Every request goes through :meth:`AlmaClient.request`, which owns the throttle, the retries, the
daily-quota bookkeeping and the mapping of Alma's error bodies to :mod:`almatools.errors`.

Retry rules (Alma's behaviour, see the reference):
    * 429 ``PER_SECOND_THRESHOLD`` is retried with back-off for every method: Alma refused the call
      before doing anything.
    * 5xx, read timeouts and broken connections are retried for GET, PUT and DELETE (a PUT is a
      swap-all of the whole record, so sending it twice leaves the same record).
    * A POST is retried only when it provably never reached the server (connection refused, connect
      timeout). Otherwise it raises; :meth:`AlmaClient.create_user` then looks the patron up before it
      tries again, so nobody is created twice.
    * 429 ``DAILY_THRESHOLD`` is never retried.

The API key travels in the ``Authorization: apikey …`` header, never in the URL, so it cannot leak into
logs, exception messages or proxies' access logs. ``repr`` hides it.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
import urllib3

from almatools import __version__
from almatools.config import DEFAULT_PER_SECOND, Settings, check_base_url, is_loopback_url, region_of, region_url
from almatools.errors import (
    AlmaConnectionError,
    AlmaError,
    ConfigError,
    DuplicateError,
    NotFoundError,
    QuotaExhaustedError,
    RateLimitError,
    ReportNotReadyError,
    ServerError,
    error_for,
)
from almatools.pacing import Throttle, _ordered_map
from almatools.replies import alma_error_fields, json_of_xml_reply, not_json_message
from almatools.search import SEARCH_FIELDS, UserSearch, build_q

__all__ = ["AlmaClient", "UserSearch", "PlannedWrite", "Throttle", "build_q", "SEARCH_FIELDS"]

log = logging.getLogger(__name__)

_SECRET_FIELDS = ("password", "pin_number")
_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD"})


@dataclass(frozen=True)
class PlannedWrite:
    """A write that a dry-run client recorded instead of sending. Passwords are masked."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None

    def __str__(self) -> str:
        who = self.body.get("primary_id") if isinstance(self.body, dict) else None
        return f"{self.method} {self.path}" + (f" (primary_id={who})" if who else "")


def _mask_secrets(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: ("***" if k in _SECRET_FIELDS and v else _mask_secrets(v)) for k, v in body.items()}
    if isinstance(body, list):
        return [_mask_secrets(v) for v in body]
    return body


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request provably never reached the server (it is then safe to resend any method)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)
        return isinstance(reason, urllib3.exceptions.NewConnectionError)
    return False


def _matches_sent(stored: Mapping[str, Any], sent: Mapping[str, Any]) -> bool:
    """Whether a stored record is the one a POST sent: same primary id, names, user group and account type
    (ignoring case and spacing; fields the POST left out are not compared), and every identifier sent."""
    def text(value: Any) -> str:
        if isinstance(value, Mapping):
            value = value.get("value")
        return " ".join(str(value or "").split()).casefold()

    for key in ("primary_id", "first_name", "middle_name", "last_name", "user_group", "account_type"):
        if key in sent and text(sent.get(key)) and text(stored.get(key)) != text(sent.get(key)):
            return False
    held = {(text(i.get("id_type")), text(i.get("value"))) for i in stored.get("user_identifier") or []
            if isinstance(i, Mapping)}
    return all((text(i.get("id_type")), text(i.get("value"))) in held
               for i in sent.get("user_identifier") or [] if isinstance(i, Mapping) and text(i.get("value")))


class AlmaClient:
    """A client of Alma's REST API (Users and code tables), safe to share between threads.

    Args:
        api_key: the Alma API key (or the sandbox's).
        region: ``na``, ``eu``, ``ap``, ``aps``, ``ca`` or ``cn``; ignored when ``base_url`` is given.
        base_url: full base URL ending in ``/almaws/v1``.
        per_second: the throttle, in calls per second (Alma allows 25 per institution by default).
        timeout: seconds to wait for a reply.
        max_retries: retries of one call before its error is raised.
        backoff: first back-off delay in seconds; it doubles on each retry (with jitter, capped at 16 s).
        dry_run: record writes in :attr:`planned_writes` instead of sending them.
        workers: threads for :meth:`fetch_users`.

    Example:
        >>> with AlmaClient.from_env() as alma:            # doctest: +SKIP
        ...     user = alma.get_user("123456789")
    """

    def __init__(
        self,
        *,
        api_key: str,
        region: str | None = None,
        base_url: str | None = None,
        per_second: float = DEFAULT_PER_SECOND,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        dry_run: bool = False,
        workers: int = 8,
    ) -> None:
        if not api_key or not str(api_key).strip():
            raise ConfigError("No Alma API key: set ALMA_API_KEY, or leave it unset to use the local sandbox.")
        self._api_key = str(api_key).strip()
        self.base_url = check_base_url(base_url) if base_url else region_url(region or "na")
        self.throttle = Throttle(per_second)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.dry_run = dry_run
        self.workers = max(1, int(workers))
        self.planned_writes: list[PlannedWrite] = []
        self.remaining: int | None = None
        self.calls = 0
        self._counter_lock = threading.Lock()
        self._code_tables: dict[str, list[dict]] = {}
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=self.workers + 4, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({
            "Authorization": f"apikey {self._api_key}",
            "Accept": "application/json",
            "User-Agent": f"almatools/{__version__}",
        })

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> AlmaClient:
        """A client configured from ALMA_API_KEY, ALMA_REGION / ALMA_BASE_URL and ALMA_PER_SECOND."""
        settings = Settings.from_env(environ)
        kwargs: dict[str, Any] = {"api_key": settings.api_key, "base_url": settings.base_url,
                                  "per_second": settings.per_second}
        kwargs.update(overrides)
        return cls(**kwargs)

    # -- identity ---------------------------------------------------------------------------------

    @property
    def environment(self) -> str:
        """``"SANDBOX"`` for a server on this machine, else ``"PRODUCTION"``."""
        return "SANDBOX" if is_loopback_url(self.base_url) else "PRODUCTION"

    @property
    def region(self) -> str | None:
        """The Alma region code of the base URL, or None for the sandbox or an unknown host."""
        return region_of(self.base_url)

    def banner_text(self) -> str:
        """One line naming the environment, e.g. ``PRODUCTION (region eu): https://… (DRY RUN: …)``.

        Every command prints it before anything can write; every notebook shows it as a banner
        (:func:`almatools.ui.build_banner`).
        """
        where = self.environment
        if where == "PRODUCTION":
            where += f" (region {self.region})" if self.region else " (custom URL)"
        text = f"{where}: {self.base_url}"
        if self.dry_run:
            text += " (DRY RUN: nothing is written)"
        return text

    def __repr__(self) -> str:
        mode = ", dry_run=True" if self.dry_run else ""
        return f"AlmaClient(base_url={self.base_url!r}, environment={self.environment!r}, api_key=<hidden>{mode})"

    def __enter__(self) -> AlmaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._session.close()

    # -- the chokepoint ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        xml: bool = False,
    ) -> Any:
        """Send one call to Alma and return its decoded JSON body (None for an empty body).

        Args:
            method: GET, POST, PUT or DELETE.
            path: below the base URL, e.g. ``/users/123``.
            params: query parameters (None values are dropped).
            json: the request body.
            xml: ask for XML and return the raw bytes (Analytics answers only in XML).

        Raises:
            AlmaError: a subclass for each kind of failure (see :mod:`almatools.errors`).
        """
        method = method.upper()
        params = {k: v for k, v in (params or {}).items() if v is not None}
        if self.dry_run and method != "GET":
            planned = PlannedWrite(method, path, dict(params), _mask_secrets(json))
            self.planned_writes.append(planned)
            log.info("dry run: would send %s", planned)
            return json
        url = self.base_url + path
        attempt = 0
        while True:
            self.throttle.acquire()
            started = time.monotonic()
            try:
                response = self._session.request(method, url, params=params, json=json, timeout=self.timeout,
                                                 headers={"Accept": "application/xml"} if xml else None)
            except requests.RequestException as exc:
                never_sent = _never_sent(exc)
                with self._counter_lock:
                    self.calls += 0 if never_sent else 1
                retry = (never_sent or method in _IDEMPOTENT) and attempt < self.max_retries
                # A retry is worth a warning; the last failure is the exception raised below, not a log line too.
                (log.warning if retry else log.debug)("%s %s: no reply (%s)%s", method, path, type(exc).__name__,
                                                      ", retrying" if retry else "")
                if retry:
                    attempt += 1
                    self._sleep_backoff(attempt, None)
                    continue
                raise AlmaConnectionError(
                    "Alma could not be reached" if never_sent else "The connection to Alma broke before a reply arrived",
                    ambiguous=not never_sent, method=method, path=path) from exc
            with self._counter_lock:
                self.calls += 1
            remaining = response.headers.get("X-Exl-Api-Remaining")
            if remaining is not None and remaining.strip().lstrip("-").isdigit():
                self.remaining = int(remaining)
            log.debug("%s %s -> %s (%.3fs)", method, path, response.status_code, time.monotonic() - started)
            if response.status_code < 400:
                if not response.content or not response.content.strip():
                    return None
                if xml:
                    return response.content
                try:
                    return response.json()
                except ValueError as exc:
                    # XML where JSON was asked (a proxy that drops the Accept header): the same record
                    converted = json_of_xml_reply(response.content)
                    if converted is not None:
                        log.warning("%s %s: Alma answered in XML although JSON was asked; read as XML", method, path)
                        return converted
                    raise AlmaError(not_json_message(response.status_code, response.headers.get("Content-Type", ""),
                                                     response.content, response.reason),
                                    status=response.status_code, method=method, path=path) from exc
            code, message, tracking = alma_error_fields(response.status_code, response.headers.get("Content-Type", ""),
                                                        response.content or b"", response.reason)
            cls = error_for(response.status_code, code, message)
            error = cls(message, status=response.status_code, code=code, tracking_id=tracking, method=method, path=path)
            # Alma answers a wrong Analytics path with a 500 "Path not found": asking again cannot help.
            deterministic = cls is ServerError and message.startswith("Path not found")
            retry = cls is RateLimitError or (cls is ServerError and method in _IDEMPOTENT and not deterministic)
            if retry and attempt < self.max_retries:
                attempt += 1
                log.warning("%s %s: %s, retry %d of %d", method, path, code or response.status_code, attempt,
                            self.max_retries)
                self._sleep_backoff(attempt, response.headers.get("Retry-After"))
                continue
            raise error

    def _sleep_backoff(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * (2 ** (attempt - 1))
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, float(retry_after))
        time.sleep(min(16.0, delay) * random.uniform(0.75, 1.25))

    # -- quota ------------------------------------------------------------------------------------

    def refresh_remaining(self) -> int | None:
        """Make one cheap call (a user count) to learn how many calls are left today."""
        self.request("GET", "/users", params={"limit": 0})
        return self.remaining

    def check_budget(self, calls: int, *, reserve: int = 500) -> None:
        """Refuse a batch up front when it would eat into the day's last ``reserve`` calls.

        Raises:
            QuotaExhaustedError: with how many calls the batch needs and how many are left.
        """
        left = self.remaining if self.remaining is not None else self.refresh_remaining()
        if left is None:
            return  # the server does not report a quota
        if calls > left - reserve:
            raise QuotaExhaustedError(
                f"This needs about {calls:,} API calls but Alma reports {left:,} left today and {reserve:,} are kept "
                f"in reserve. Run it after the daily count resets, or in smaller parts.", code="BUDGET")

    # -- users ------------------------------------------------------------------------------------

    def search_users(self, q: str | None = None, *, order_by: str | None = None, page_size: int = 100,
                     max_records: int | None = None, **fields: str) -> UserSearch:
        """A lazy search over ``GET /users``. Nothing is sent until you iterate or count.

        Args:
            q: a ready ``q`` expression (see :func:`build_q`); or give ``fields`` instead.
            order_by: ``last_name``, ``first_name`` or ``primary_id``.
            page_size: users per call, at most 100 (Alma's limit).
            max_records: stop after this many.
            **fields: search clauses, e.g. ``last_name="Smith"``.
        """
        if fields:
            extra = build_q(**fields)
            q = extra if q is None else f"{q} AND {extra}"
        return UserSearch(self, q=q, order_by=order_by, page_size=page_size, max_records=max_records)

    def get_user(self, user_id: str, *, user_id_type: str = "all_unique", view: str = "full",
                 expand: str | Iterable[str] | None = None) -> dict:
        """``GET /users/{id}``: one full (or brief) user record.

        Args:
            user_id: the primary id or, with ``all_unique``, any unique identifier.
            user_id_type: ``all_unique`` (default) or an identifier type code such as ``BARCODE``.
            view: ``full`` or ``brief``.
            expand: ``loans``, ``requests`` and/or ``fees`` to fill those counts in.

        Raises:
            NotFoundError: Alma has no such user (it answers 401861 or 401890 with HTTP 400).
        """
        if expand is not None and not isinstance(expand, str):
            expand = ",".join(expand)
        params = {"user_id_type": None if user_id_type == "all_unique" else user_id_type,
                  "view": None if view == "full" else view, "expand": expand}
        return self.request("GET", f"/users/{quote(user_id, safe='')}", params=params)

    def find_user(self, user_id: str, **kwargs: Any) -> dict | None:
        """Like :meth:`get_user`, but None when there is no such user."""
        try:
            return self.get_user(user_id, **kwargs)
        except NotFoundError:
            return None

    def create_user(self, user: Mapping[str, Any], **params: Any) -> dict:
        """``POST /users``: create a user; returns the record Alma stored.

        A POST whose reply was lost (broken connection, 5xx) may or may not have created the user, so it
        is not simply resent: the user is looked up by primary id first, and the POST is repeated only if
        the user does not exist. A user created by this call is therefore never created twice.

        Args:
            user: the Alma user object (JSON form).
            **params: Alma's POST parameters, e.g. ``send_pin_number_letter=False``.

        Raises:
            DuplicateError: the primary id or an identifier is taken (401851).
            InvalidRecordError: Alma refused the record.
        """
        primary_id = str(user.get("primary_id") or "")
        for attempt in itertools.count():
            try:
                return self.request("POST", "/users", params=params, json=dict(user))
            except DuplicateError:
                if attempt == 0 or not primary_id:
                    raise
                # A retried POST: the first one may have been committed after its reply was lost (a slow
                # commit past the read timeout), so "already exists" may be this kit's own record.
                existing = self.find_user(primary_id)
                if existing is not None and _matches_sent(existing, user):
                    log.info("POST /users for %s: the earlier attempt had created the user", primary_id)
                    return existing
                raise
            except (AlmaConnectionError, ServerError) as exc:
                if isinstance(exc, AlmaConnectionError) and not exc.ambiguous:
                    raise  # the client already retried a POST that never left; the server is unreachable
                if not primary_id or attempt >= self.max_retries:
                    raise
                log.warning("POST /users for %s may or may not have arrived; looking the user up first", primary_id)
                time.sleep(min(8.0, self.backoff * 2 ** attempt))
                existing = self.find_user(primary_id)
                if existing is not None:
                    if _matches_sent(existing, user):
                        return existing
                    raise DuplicateError(
                        f"A user with primary id {primary_id} exists with other details; not created again",
                        code="401851", method="POST", path="/users") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def put_user(self, user_id: str, user: Mapping[str, Any], **params: Any) -> dict:
        """``PUT /users/{id}`` with a whole record (Alma replaces everything: send all of it)."""
        return self.request("PUT", f"/users/{quote(user_id, safe='')}", params=params, json=dict(user))

    def update_user(self, user_id: str, change: Callable[[dict], Any] | Mapping[str, Any], *,
                    override: Iterable[str] | None = None, **params: Any) -> dict:
        """Change a user the way Alma wants it (swap-all): fetch the full record, change it, send it all back.

        Args:
            user_id: the user's primary id.
            change: a mapping of top-level fields to set, or a function that edits the record in place
                (or returns a new one).
            override: fields Alma must replace even for SIS-managed users whose values staff edited.
            **params: more PUT parameters, e.g. ``recalculate_roles=True``.
        """
        record = self.get_user(user_id)
        if callable(change):
            record = change(record) or record
        else:
            record.update(change)
        if override:
            params["override"] = ",".join(override)
        return self.put_user(record.get("primary_id") or user_id, record, **params)

    def delete_user(self, user_id: str, *, user_id_type: str | None = None) -> None:
        """``DELETE /users/{id}`` (Alma answers 204)."""
        self.request("DELETE", f"/users/{quote(user_id, safe='')}", params={"user_id_type": user_id_type})

    def fetch_users(self, user_ids: Iterable[str], *, workers: int | None = None,
                    on_error: Callable[[str, AlmaError], None] | None = None,
                    progress: bool | str = False, total: int | None = None) -> Iterator[dict]:
        """Fetch many full records concurrently, within the throttle, yielding them in input order.

        The pool is never held back by the order: while one record waits on a retry, later ones keep
        being fetched and wait (at most a bounded number of them) until they can be yielded in order.

        Args:
            user_ids: primary ids (any iterable; read lazily, so a million ids are fine).
            workers: threads (default: the client's ``workers``).
            on_error: called with (id, error) for a user that cannot be fetched; None raises instead.
                A daily-quota error is always raised.
            progress: show a progress bar (a string sets its label).
            total: number of ids, for the progress bar when ``user_ids`` has no length.
        """
        workers = max(1, workers or self.workers)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            n = total if total is not None else (len(user_ids) if hasattr(user_ids, "__len__") else None)
            bar = tqdm(total=n, desc=progress if isinstance(progress, str) else "users", unit="user")
        try:
            for uid, outcome in _ordered_map(self.get_user, user_ids, workers=workers):
                if isinstance(outcome, AlmaError):
                    if on_error is None or isinstance(outcome, QuotaExhaustedError):
                        raise outcome
                    on_error(uid, outcome)
                    outcome = None
                if bar is not None:
                    bar.update(1)
                if outcome is not None:
                    yield outcome
        finally:
            if bar is not None:
                bar.close()

    # -- analytics --------------------------------------------------------------------------------

    def analytics_rows(self, path: str, *, limit: int = 1000, filter: str | None = None,
                       still_running_waits: int = 10, max_wait: float = 30.0,
                       on_wait: Callable[[int, float], None] | None = None) -> Iterator[dict[str, str]]:
        """The rows of an Alma Analytics report, by column heading, page by page.

        Alma answers in XML only. The first page carries the column headings (in an XSD schema) and a
        resumption token; later pages are asked for with the token until ``IsFinished`` is true. Cells
        that are empty are left out of a row, so cells are mapped by their tag name, never by position.

        A report that is still being prepared answers ``IsFinished=false`` with an empty ``ResultXml``
        and, on the first page, no token. The same page is then asked for again (with the path while
        there is no token, else with the token) after a growing pause, at most ``still_running_waits``
        times; each wait is logged and passed to ``on_wait``.

        Args:
            path: the report's catalog path, e.g. ``/shared/My Institution/Reports/Users``.
            limit: rows per page, 25 to 1000 (Alma wants multiples of 25).
            filter: an OBIEE ``sawx:expr`` filter.
            still_running_waits: how many times in a row to wait for a report that is still being prepared.
            max_wait: the longest single pause, in seconds (pauses double from the client's ``backoff``).
            on_wait: called with (wait number, seconds) before each pause, e.g. to show progress.

        Yields:
            One dict per row: column heading → text ("" for an empty cell).

        Raises:
            ReportNotReadyError: the report was still being prepared after every allowed wait.
            ServerError: Alma's 500 "Path not found" for a wrong path (not retried).
        """
        from almatools.analytics import parse_report_page

        if not 25 <= limit <= 1000:
            raise ConfigError(f"Analytics pages hold 25 to 1000 rows, not {limit}.")
        token: str | None = None
        headings: dict[str, str] = {}
        waits = 0
        waited = 0.0
        while True:
            params = {"path": None if token else path, "token": token, "limit": limit,
                      "col_names": "true" if not token else None, "filter": None if token else filter}
            try:
                body = self.request("GET", "/analytics/reports", params=params, xml=True)
            except AlmaError as exc:
                if exc.code == "420033":  # "No more rows to fetch": the previous page was the last
                    return
                raise
            page = parse_report_page(body or b"")
            token = token or page.token
            headings = headings or page.headings
            if not page.rows and not page.finished:
                waits += 1
                if waits > still_running_waits:
                    raise ReportNotReadyError(
                        f"The Analytics report {path} was still being prepared after {waits - 1} waits "
                        f"({waited:.0f} s); run it again later, or raise still_running_waits.",
                        method="GET", path="/analytics/reports")
                delay = min(max_wait, self.backoff * 2 ** (waits - 1))
                log.info("Analytics report %s is still being prepared; asking again in %.1f s (wait %d of %d)",
                         path, delay, waits, still_running_waits)
                if on_wait is not None:
                    on_wait(waits, delay)
                time.sleep(delay)
                waited += delay
                continue
            waits = 0
            for cells in page.rows:
                columns = headings or {tag: tag for tag in cells}
                yield {heading: cells.get(tag, "") for tag, heading in columns.items() if tag != "Column0"}
            if page.finished or not token:
                return

    # -- configuration ----------------------------------------------------------------------------

    def code_table(self, name: str) -> list[dict]:
        """The rows of an Alma code table (e.g. ``UserGroups``), each ``{"code", "description", …}``; cached."""
        if name not in self._code_tables:
            body = self.request("GET", f"/conf/code-tables/{quote(name, safe='')}") or {}
            rows = body.get("row") or []
            self._code_tables[name] = rows if isinstance(rows, list) else [rows]
        return self._code_tables[name]
