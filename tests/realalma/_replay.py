"""A tiny replay server: real HTTP on a free loopback port, answering each route with recorded Alma replies.

Each route is ``(METHOD, path below /almaws/v1)`` and holds a list of replies served in turn (the last one
repeats), or a function of the query that returns one. Every request is recorded (method, path, query)
so a test can check what the client asked for, e.g. that a still-running Analytics report was asked
for again with its path.

    >>> with ReplayServer() as alma:                                          # doctest: +SKIP
    ...     alma.route("GET", "/users/x", Reply.file("error_401861_not_found.json", 400))
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "alma"
BASE = "/almaws/v1"
_TYPES = {".json": "application/json;charset=UTF-8", ".xml": "application/xml;charset=UTF-8",
          ".html": "text/html; charset=utf-8"}


@dataclass(frozen=True)
class Reply:
    """One recorded reply: status, content type and body."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def file(cls, name: str, status: int = 200, **headers: str) -> Reply:
        """A fixture of tests/fixtures/alma, with the content type its suffix names."""
        path = FIXTURES / name
        suffix = ".html" if name.endswith(".html") else path.suffix
        return cls(status, path.read_bytes(), _TYPES[suffix], tuple(headers.items()))

    @classmethod
    def json(cls, text: str, status: int = 200) -> Reply:
        return cls(status, text.encode(), _TYPES[".json"])


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)


class ReplayServer:
    """The server; ``base_url`` ends in ``/almaws/v1`` like Alma's."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply] | Callable[[dict[str, list[str]]], Reply]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _answer(self) -> None:
                parts = urlsplit(self.path)
                path = parts.path[len(BASE):] if parts.path.startswith(BASE) else parts.path
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                reply = replay._next(self.command, path, parse_qs(parts.query))
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}{BASE}"
        # a short poll interval: shutting the server down waits for one poll (0.5 s by default, per test)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="alma-replay", daemon=True)

    def route(self, method: str, path: str, *replies: Reply | Callable[[dict[str, list[str]]], Reply]) -> None:
        """Answer ``method path`` with these replies in turn (the last repeats), or with a function of the query."""
        if len(replies) == 1 and callable(replies[0]):
            self.routes[(method, path)] = replies[0]
        else:
            self.routes[(method, path)] = list(replies)

    def calls(self, method: str, path: str) -> list[Seen]:
        """The requests received for a route, in order."""
        return [s for s in self.seen if (s.method, s.path) == (method, path)]

    def _next(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        with self._lock:
            self.seen.append(Seen(method, path, query))
            replies = self.routes.get((method, path))
            if replies is None:
                return Reply.json('{"errorsExist":true,"errorList":{"error":[{"errorCode":"402119",'
                                  f'"errorMessage":"replay: no route for {method} {path}"}}]}},"result":null}}', 400)
            if callable(replies):
                return replies(query)
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
