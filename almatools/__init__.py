"""almatools: a Jupyter operations kit for Ex Libris Alma patron data.

Start with :func:`connect`: it returns an :class:`AlmaClient` for real Alma when ``ALMA_API_KEY`` is set,
and otherwise for the local sandbox, which it starts on first use.
"""

from __future__ import annotations

import atexit
import threading

__version__ = "0.1.0"

from almatools.client import AlmaClient, build_q  # noqa: E402
from almatools.config import Settings  # noqa: E402
from almatools.errors import (  # noqa: E402
    AlmaConnectionError,
    AlmaError,
    AlmaToolsError,
    AuthError,
    ConfigError,
    DuplicateError,
    InvalidRecordError,
    NotFoundError,
    PolicyError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
    SourceError,
)

__all__ = [
    "__version__", "connect", "AlmaClient", "build_q", "Settings",
    "AlmaToolsError", "AlmaError", "AlmaConnectionError", "AuthError", "ConfigError", "DuplicateError",
    "InvalidRecordError", "NotFoundError", "PolicyError", "QuotaExhaustedError", "RateLimitError", "ServerError",
    "SourceError",
]

_sandbox_lock = threading.Lock()
_sandbox = None


def _shared_sandbox():
    """The sandbox this process started for :func:`connect`, started once and stopped at exit."""
    global _sandbox
    with _sandbox_lock:
        if _sandbox is None:
            from almatools.sandbox import start_sandbox

            _sandbox = start_sandbox(per_second=25)
            atexit.register(_sandbox.stop)
        return _sandbox


def connect(*, dry_run: bool = False, **client_options) -> AlmaClient:
    """A client for the Alma this kit should work on.

    With ``ALMA_API_KEY`` set: real Alma in ``ALMA_REGION`` (or at ``ALMA_BASE_URL``). Without it: the local
    sandbox, started in this process on first use (its data lives in ``$ALMATOOLS_DATA/sandbox``).

    Args:
        dry_run: record writes instead of sending them.
        **client_options: more :class:`AlmaClient` options (``per_second``, ``timeout``, ``workers`` …).
    """
    settings = Settings.from_env()
    options = {"per_second": settings.per_second, "dry_run": dry_run, **client_options}
    if settings.api_key:
        return AlmaClient(api_key=settings.api_key, base_url=settings.base_url, **options)
    sandbox = _shared_sandbox()
    return AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, **options)
