"""A loopback HTTP proxy in front of the sandbox that records every request body the kit sends.

The kit's client talks real HTTP to it, it forwards each request unchanged to the sandbox and the reply
unchanged back, and keeps ``(method, path, body)`` so a test can read exactly what reached "Alma".
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_FORWARDED = ("Authorization", "Content-Type", "Accept")


class RecordingProxy:
    """``with RecordingProxy(sandbox_base_url) as proxy:`` then point a client at ``proxy.base_url``."""

    def __init__(self, target_base_url: str) -> None:
        parts = urlsplit(target_base_url)
        self.target = f"{parts.scheme}://{parts.netloc}"
        self.base_path = parts.path
        self.sent: list[tuple[str, str, Any]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                proxy.sent.append((self.command, self.path, body))
                request = urllib.request.Request(proxy.target + self.path, data=raw or None, method=self.command,
                                                 headers={h: self.headers[h] for h in _FORWARDED if self.headers.get(h)})
                try:
                    with urllib.request.urlopen(request, timeout=30) as reply:
                        status, headers, data = reply.status, reply.headers, reply.read()
                except urllib.error.HTTPError as err:
                    status, headers, data = err.code, err.headers, err.read()
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.base_path}"

    def bodies(self, method: str) -> list[Any]:
        return [body for m, _path, body in self.sent if m == method]

    def __enter__(self) -> RecordingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
