"""Run the sandbox app with uvicorn in a background thread.

Example:
    >>> with Store(":memory:") as store, SandboxServer(store, api_key="k") as server:  # doctest: +SKIP
    ...     requests.get(server.base_url + "/users", params={"apikey": "k", "format": "json"})

The knobs (``server.knobs``) can be turned while it runs, e.g. ``server.knobs.fault_rate = 0.2``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import uvicorn

from almatools.sandbox.app import create_app
from almatools.sandbox.knobs import TOTAL_QUIRKS, Knobs
from almatools.sandbox.store import Store

__all__ = ["Knobs", "SandboxServer"]

log = logging.getLogger(__name__)

_START_TIMEOUT = 10.0
_THREAD_PREFIX = "alma-sandbox-"


class _QuietSandbox(logging.Filter):
    """Keep two kinds of uvicorn records from sandbox threads out of the logs.

    Access lines would show the key of every client that sends it as ``apikey=``; and "returned without
    completing response" is uvicorn's complaint about the replies the sandbox cuts short on purpose
    (fault injection), which the sandbox logs itself.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not threading.current_thread().name.startswith(_THREAD_PREFIX):
            return True
        return record.name != "uvicorn.access" and record.msg != "ASGI callable returned without completing response."


_QUIET = _QuietSandbox()


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket. It names IPPROTO_TCP because asyncio sets TCP_NODELAY only on sockets
    that do (socket.create_server leaves proto 0): without it every reply on a kept-alive connection
    waits 40 ms for a delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name == "posix":  # rebind a port in TIME_WAIT, as socket.create_server does
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class SandboxServer:
    """The Alma sandbox on a local port, served from a daemon thread.

    Args:
        store: the users it serves.
        api_key: the one key it accepts (hidden from ``repr`` and logs).
        host: the address to bind.
        port: the port to bind; 0 picks a free one (``base_url`` then names the real one).
        latency_ms, fault_rate, per_second, daily_limit, seed: the initial Knobs (0 = no limit).
    """

    def __init__(
        self,
        store: Store,
        *,
        api_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        fault_rate: float = 0.0,
        per_second: int = 0,
        daily_limit: int = 0,
        seed: int = 0,
    ) -> None:
        if not api_key:
            raise ValueError("the sandbox needs an API key")
        self.store = store
        self.host, self.port = host, port
        self.knobs = Knobs(
            latency_ms=latency_ms, fault_rate=fault_rate, per_second=per_second, daily_limit=daily_limit, seed=seed
        )
        self._api_key = api_key
        self.owns_store = False  # set by start_sandbox, which opened the store: stop() then closes it
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def api_key(self) -> str:
        """The key clients must send."""
        return self._api_key

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/almaws/v1``, with the port actually bound."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/almaws/v1"

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def __repr__(self) -> str:
        return f"SandboxServer(base_url={self.base_url!r}, api_key='***', running={self.running})"

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> SandboxServer:
        """Bind the port and serve in the background; returns once requests are accepted.

        Raises:
            OSError: the port cannot be bound.
            RuntimeError: the server did not come up.
        """
        if self.running:
            return self
        if self.knobs.total_quirk not in TOTAL_QUIRKS:
            raise ValueError(f"total_quirk must be one of {TOTAL_QUIRKS}")
        sock = _listen(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.store, api_key=self._api_key, knobs=self.knobs),
            http="h11",
            lifespan="off",
            log_config=None,  # leave the host application's logging alone
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        for name in ("uvicorn.access", "uvicorn.error"):
            if _QUIET not in logging.getLogger(name).filters:
                logging.getLogger(name).addFilter(_QUIET)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"{_THREAD_PREFIX}{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError(f"the sandbox did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        log.info("Alma sandbox serving %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread (idempotent). A store the caller gave stays open; the store
        :func:`almatools.sandbox.start_sandbox` opened for this server (``owns_store``) is closed with it,
        so no SQLite connection is left for the garbage collector (Python 3.13 warns about one)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT)
        self._server = self._thread = None
        if self.owns_store:
            self.store.close()
