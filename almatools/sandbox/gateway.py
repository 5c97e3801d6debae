"""The sandbox's gateway: the API key, the per-second and daily thresholds, fault injection and body
limits, in front of every route (as Alma's API gateway answers before the application does).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import random
import time
import uuid

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from almatools.sandbox.http import (
    AlmaErrorReply,
    wants_json,
)
from almatools.sandbox.knobs import MSG_DAILY, MSG_NO_APIKEY, MSG_PER_SECOND, MSG_UNAUTHORIZED, UNLIMITED_DAILY, Knobs
from almatools.sandbox.store import Store
from almatools.sandbox.validation import MAX_BODY_BYTES

log = logging.getLogger(__name__)

async def _discard(message: Message) -> None:
    """A ``send`` that throws the reply away (the request took effect; the client never hears)."""


async def _break_connection(send: Send) -> None:
    """Start a reply that promises more bytes than it sends, then stop.

    uvicorn closes the socket when an app ends a reply early, so the client reads a truncated body:
    ``requests`` raises ``ChunkedEncodingError`` (a dropped connection, as a flaky network gives).
    uvicorn logs "ASGI callable returned without completing response." for it; that is expected.
    """
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
    })
    await send({"type": "http.response.body", "body": b'{"user":', "more_body": True})


class _Gate:
    """What Alma's API gateway does before a request reaches the Users service.

    Order: latency, the thresholds (which count the call), the key check, injected faults, then the
    app. Every reply gets ``X-Exl-Api-Remaining`` and ``X-Request-ID``.
    """

    def __init__(self, app: ASGIApp, *, store: Store, api_key: str, knobs: Knobs) -> None:
        self.app, self.store, self.knobs = app, store, knobs
        self._key = api_key.encode()
        self._dice = random.Random(knobs.seed)
        self._second, self._calls_this_second = -1, 0

    def _daily_key(self) -> str:
        return f"api_calls:{dt.datetime.now(dt.timezone.utc).date().isoformat()}"

    def _remaining(self, used: int) -> int:
        return max(0, (self.knobs.daily_limit or UNLIMITED_DAILY) - used)

    def _meter(self) -> tuple[AlmaErrorReply | None, int]:
        """Count one call against the thresholds: (the threshold error or None, calls left today)."""
        second = int(time.time())  # Alma's per-second threshold works in fixed one-second windows
        if second != self._second:
            self._second, self._calls_this_second = second, 0
        self._calls_this_second += 1
        used = int(self.store.meta_get(self._daily_key()) or 0)
        if self.knobs.per_second and self._calls_this_second > self.knobs.per_second:
            return AlmaErrorReply("PER_SECOND_THRESHOLD", MSG_PER_SECOND, 429, tracked=False), self._remaining(used)
        if self.knobs.daily_limit and used >= self.knobs.daily_limit:
            return AlmaErrorReply("DAILY_THRESHOLD", MSG_DAILY, 429), 0
        return None, self._remaining(self.store.bump(self._daily_key()))

    def _key_error(self, request: Request) -> AlmaErrorReply | None:
        """None for the right key; else Alma's gateway reply: GENERAL_ERROR when no apikey was given at
        all (recorded reply error_general_error_no_apikey.xml), UNAUTHORIZED for a wrong one."""
        given = request.query_params.get("apikey")
        if given is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            given = token.strip() if scheme.lower() == "apikey" else ""
        if not given:
            return AlmaErrorReply("GENERAL_ERROR", MSG_NO_APIKEY, tracked=False, xml_only=True)
        if hmac.compare_digest(given.encode(), self._key):
            return None
        return AlmaErrorReply("UNAUTHORIZED", MSG_UNAUTHORIZED, tracked=False, xml_only=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.knobs.drop_accept:  # a proxy in front of Alma that drops the header (see Knobs)
            scope = {**scope, "headers": [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"accept"]}
        request = Request(scope)
        as_json = wants_json(request)
        alma = scope["path"].startswith("/almaws/")
        if alma and self.knobs.latency_ms > 0:
            await asyncio.sleep(self.knobs.latency_ms / 1000)
        if alma:
            error, remaining = self._meter()
        else:
            error, remaining = None, self._remaining(int(self.store.meta_get(self._daily_key()) or 0))
        headers = [(b"x-exl-api-remaining", str(remaining).encode()), (b"x-request-id", uuid.uuid4().hex.encode())]

        started = False

        async def send_marked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        if error is None:
            error = self._key_error(request)
        if error is None and alma and self.knobs.read_only and _writes(request):
            error = AlmaErrorReply("UNAUTHORIZED", MSG_UNAUTHORIZED, tracked=False, xml_only=True)
        if error is None and alma and _declared_length(scope) > MAX_BODY_BYTES:
            error = _too_large()
        if error is None and alma and self.knobs.fault_rate > 0 and self._dice.random() < self.knobs.fault_rate:
            if self._dice.random() < 0.5:
                error = AlmaErrorReply("INTERNAL_SERVER_ERROR", "Internal server error.", self._dice.choice((500, 503)))
            else:
                applied = self._dice.random() < 0.5
                log.info("fault: dropping the connection of %s %s (%s)", scope["method"], scope["path"],
                         "after applying it" if applied else "before applying it")
                if applied:
                    await self.app(scope, receive, _discard)
                await _break_connection(send_marked)
                return
        if error is None:
            try:
                await self.app(scope, receive, send_marked)
                return
            except ClientDisconnect:  # the client gave up (e.g. its read timeout) while the body was read
                log.info("client went away during %s %s", scope["method"], scope["path"])
                return
            except Exception:  # a sandbox bug: still answer as Alma would, with the headers
                log.exception("the sandbox failed on %s %s", scope["method"], scope["path"])
                if started:
                    raise
                error = AlmaErrorReply("INTERNAL_SERVER_ERROR", "Internal server error.", 500)
        await error.response(as_json)(scope, receive, send_marked)


def _writes(request: Request) -> bool:
    """Whether a request would change data (what a read-only key may not do): POST, PUT and DELETE, but
    not a patron's authentication (``POST /users/{id}?op=auth`` or ``op=refresh``)."""
    if request.method not in ("POST", "PUT", "DELETE"):
        return False
    return not (request.method == "POST" and request.query_params.get("op") in ("auth", "refresh"))


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _too_large() -> AlmaErrorReply:
    # Our own bound and code: Alma's size limit and its reply to an oversized body are not public.
    return AlmaErrorReply("REQUEST_TOO_LARGE", f"The request body is larger than {MAX_BODY_BYTES:,} bytes.", 413)
