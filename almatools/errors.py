"""The kit's exceptions.

Everything the kit raises on purpose derives from :class:`AlmaToolsError`::

    AlmaToolsError
    ├── ConfigError               a bad environment variable or argument
    ├── PolicyError               a broken policy file (names the file, the key and what is allowed)
    ├── SourceError               a user or SIS source that cannot be read
    ├── JournalError              a line before the end of an append-only journal is damaged (names file, line)
    ├── MergeError                a worklist operation that cannot be done (almatools.merge)
    ├── ReportError               a step of a report run failed (names the step and source; almatools.reports)
    └── AlmaError                 anything Alma (or the sandbox) answered with an error, or no answer
        ├── AlmaConnectionError   no usable reply: refused, reset, timed out (``ambiguous`` if it may have arrived)
        ├── AuthError             the key is wrong, missing, or not allowed this API (UNAUTHORIZED, INVALID_REQUEST,
        │                         FORBIDDEN, the gateway's GENERAL_ERROR about a missing apikey, HTTP 401/403)
        ├── NotFoundError         401861, 401890, 60224-60226, a wrapped NOT_FOUND, HTTP 404
        ├── DuplicateError        401851: the primary id or an identifier is already taken
        ├── InvalidRecordError    401664, 401852-401859, 401863, 401864, 401676, 500038, BAD_REQUEST,
        │                         REQUEST_TOO_LARGE …
        ├── RateLimitError        429 PER_SECOND_THRESHOLD (retried by the client; raised when retries run out)
        ├── QuotaExhaustedError   429 DAILY_THRESHOLD, or a batch refused up front for want of calls
        ├── ReportNotReadyError   an Analytics report still being prepared after the allowed waits
        └── ServerError           HTTP 5xx (also a gateway's HTML error page)

Every :class:`AlmaError` carries the HTTP status, Alma's ``errorCode``, its message and ``trackingId``
(the id Ex Libris support asks for). None of them ever holds the API key: the client sends the key in a
header and builds error messages from the request's method and path only.

Outside the tree, on purpose (each is caught and turned into one of the above, or into a reply,
before it reaches a caller)::

    ValueError
    ├── RecordError               almatools.models: one bad record of a source (file, record, field);
    │                             readers report it and go on (SourceError when a whole file is bad)
    ├── NotAUserFile              almatools.models: the XML's root is not <users>/<user> (becomes SourceError)
    ├── IdentifierTaken           almatools.sandbox.store: the sandbox's store refuses a taken id (→ 401851)
    └── BodyError                 almatools.sandbox.validation: a body field Alma would refuse (→ its code)
    Exception
    └── AlmaErrorReply            almatools.sandbox.http: the sandbox's error reply, answered in Alma's
                                  web_service_result shape; a client sees it as an AlmaError
"""

from __future__ import annotations

__all__ = [
    "AlmaToolsError",
    "ConfigError",
    "PolicyError",
    "SourceError",
    "JournalError",
    "MergeError",
    "ReportError",
    "AlmaError",
    "AlmaConnectionError",
    "AuthError",
    "NotFoundError",
    "DuplicateError",
    "InvalidRecordError",
    "RateLimitError",
    "QuotaExhaustedError",
    "ReportNotReadyError",
    "ServerError",
    "error_for",
]


class AlmaToolsError(Exception):
    """Base of every error the kit raises on purpose."""


class ConfigError(AlmaToolsError):
    """An environment variable or argument has a value the kit cannot use."""


class PolicyError(AlmaToolsError):
    """The institution's policy file is broken; the message names the file, the key and what is allowed."""


class SourceError(AlmaToolsError):
    """A user or SIS source cannot be read (missing file, unknown format, unparseable content)."""


class JournalError(AlmaToolsError, ValueError):
    """A line of an append-only journal (:class:`almatools.files.AppendLog`) other than a torn last one is
    damaged. A ``ValueError`` too, as the journal readers raised before.

    Attributes:
        path: The journal file.
        line: The damaged line's number (from 1).
    """

    def __init__(self, message: str, *, path: object = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path, self.line = path, line


class MergeError(AlmaToolsError):
    """A worklist operation that cannot be done (e.g. approving a pair that fails a hard check)."""


class ReportError(AlmaToolsError):
    """A step of a report run failed; the message names the step and the source it worked on.

    Attributes:
        step: what the run was doing, e.g. ``loading the users source``.
        source: the file or source it was working on (None when there is none).
    """

    def __init__(self, message: str, *, step: str = "", source: str | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.source = source


class AlmaError(AlmaToolsError):
    """An error reply from Alma, or no usable reply at all.

    Attributes:
        status: HTTP status (``None`` when no reply arrived).
        code: Alma's ``errorCode`` (always a string, e.g. ``"401861"`` or ``"PER_SECOND_THRESHOLD"``).
        message: Alma's ``errorMessage`` (or a description of the network failure).
        tracking_id: Alma's ``trackingId``, when it sent one.
        method: HTTP method of the request.
        path: path of the request below the base URL, without the query string.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        tracking_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.tracking_id = tracking_id
        self.method = method
        self.path = path
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f" on {self.method} {self.path}" if self.method and self.path else ""
        parts = [f"HTTP {self.status}" if self.status is not None else None,
                 f"Alma error {self.code}" if self.code else None,
                 f"tracking id {self.tracking_id}" if self.tracking_id else None]
        detail = ", ".join(p for p in parts if p)
        return f"{self.message}{where}" + (f" ({detail})" if detail else "")


class AlmaConnectionError(AlmaError):
    """No usable reply: the connection was refused, reset or timed out.

    ``ambiguous`` is True when the request may have reached Alma (a write may have happened);
    False when it provably never left this machine (connection refused, connect timeout).
    """

    def __init__(self, message: str, *, ambiguous: bool, **kwargs) -> None:
        self.ambiguous = ambiguous
        super().__init__(message, **kwargs)


class AuthError(AlmaError):
    """The API key is missing, wrong, read-only for a write, or not configured for this API area."""


class NotFoundError(AlmaError):
    """No user (or other object) with that identifier. Alma says so with HTTP 400, not 404."""


class DuplicateError(AlmaError):
    """401851: the primary identifier or an identifier is already held by another user."""


class InvalidRecordError(AlmaError):
    """Alma refused the record: a mandatory field, an illegal code, an account-type rule, a password rule."""


class RateLimitError(AlmaError):
    """429 PER_SECOND_THRESHOLD: more calls per second than the institution may make."""


class QuotaExhaustedError(AlmaError):
    """The day's API calls are used up (429 DAILY_THRESHOLD), or a batch would need more than are left."""


class ReportNotReadyError(AlmaError):
    """An Analytics report was still being prepared (``IsFinished`` false, no rows) after every allowed wait."""


class ServerError(AlmaError):
    """HTTP 5xx from Alma, or an error page from a gateway in front of it."""


# Alma error codes → exception class. Codes are strings in Alma's bodies, even the numeric ones.
_BY_CODE: dict[str, type[AlmaError]] = {
    "UNAUTHORIZED": AuthError,
    # More codes of Alma's API gateway, as public clients map them (no recorded body of these was found;
    # see tests/fixtures/alma/README.md): a key the gateway does not accept (INVALID_REQUEST), a key
    # barred from the call (FORBIDDEN), a body over its size limit (REQUEST_TOO_LARGE, which the sandbox
    # also answers). None of them can succeed when sent again, whatever the HTTP status.
    "INVALID_REQUEST": AuthError,
    "FORBIDDEN": AuthError,
    "REQUEST_TOO_LARGE": InvalidRecordError,
    "401861": NotFoundError,
    "401890": NotFoundError,
    "60224": NotFoundError,
    "60225": NotFoundError,
    "60226": NotFoundError,
    "60101": NotFoundError,
    "401851": DuplicateError,
    # Codes in Alma's wrapped JSON errors ({"web_service_result": {...}}), which name the HTTP outcome:
    # NOT_FOUND (HTTP 404) and BAD_REQUEST (a body value Alma's JSON reader could not decode).
    "NOT_FOUND": NotFoundError,
    "BAD_REQUEST": InvalidRecordError,
    "PER_SECOND_THRESHOLD": RateLimitError,
    "DAILY_THRESHOLD": QuotaExhaustedError,
    "INTERNAL_SERVER_ERROR": ServerError,
}
for _code in ("401664", "401652", "401658", "401676", "401850", "401852", "401853", "401854", "401855",
              "401857", "401858", "401859", "401860", "401863", "401864", "500038"):
    _BY_CODE[_code] = InvalidRecordError


def error_for(status: int | None, code: str | None, message: str | None = None) -> type[AlmaError]:
    """The exception class for an HTTP status, an Alma error code and its message (the code wins when
    both tell).

    ``GENERAL_ERROR`` is the gateway's catch-all; when its message asks for an apikey (the recorded
    reply to a call without a key: "A Gateway error has occurred - Make sure you add an appropriate
    apikey as a parameter or a header.", tests/fixtures/alma/error_general_error_no_apikey.xml) it is an
    :class:`AuthError`, which no retry can cure.
    """
    if code == "GENERAL_ERROR" and message and "apikey" in message.lower().replace(" ", "").replace("-", ""):
        return AuthError
    if code and code in _BY_CODE:
        return _BY_CODE[code]
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFoundError
    if status == 429:
        return RateLimitError
    if status is not None and status >= 500:
        return ServerError
    return AlmaError
