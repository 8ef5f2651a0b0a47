"""Typed errors and the response envelope (DESIGN.md section 3).

A handler raises one of these; the runtime turns it into a status, headers and the error
envelope. Anything else that escapes a handler becomes INTERNAL 500 without a stack trace.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Mapping

# An error body is bounded whatever the request held (a body of 100k unknown keys must not
# draw 100k lines back): the first MAX_ERROR_FIELDS fields, then how many more there were.
MAX_ERROR_FIELDS = 20
MAX_PROBLEMS_PER_FIELD = 5
MAX_FIELD_NAME = 100  # characters of a field name echoed back
MORE_FIELDS = "_more"  # the key that carries the count of fields left out


def bounded_errors(errors: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """At most MAX_ERROR_FIELDS fields (names cut to MAX_FIELD_NAME), each with at most
    MAX_PROBLEMS_PER_FIELD problems; the rest counted under `_more`."""
    if len(errors) <= MAX_ERROR_FIELDS and all(
        len(k) <= MAX_FIELD_NAME and len(v) <= MAX_PROBLEMS_PER_FIELD for k, v in errors.items()
    ):
        return dict(errors)
    out: dict[str, list[str]] = {}
    for name, problems in errors.items():
        if len(out) == MAX_ERROR_FIELDS:
            break
        key = name if len(name) <= MAX_FIELD_NAME else name[: MAX_FIELD_NAME - 1] + "\u2026"
        out.setdefault(key, []).extend(problems[:MAX_PROBLEMS_PER_FIELD])
    left = len(errors) - len(out)
    if left > 0:
        out[MORE_FIELDS] = [f"{left} more field{'s' * (left > 1)} with problems not listed"]
    return out


class ApiError(Exception):
    """An error the client is told about: stable `code`, HTTP `status`, field errors."""

    status = 500
    code = "INTERNAL"
    message = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
    ) -> None:
        if message is not None:
            self.message = message
        self.errors = dict(errors) if errors else None
        self.data = data  # what a client may still use, e.g. /ready's report at 503
        self.backend_trailers: dict[str, str] = {}  # a backend's trailing metadata, never sent on
        self.headers = dict(headers) if headers else {}
        super().__init__(self.message)

    def body(self, request_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"success": False, "message": self.message, "code": self.code}
        if self.errors:
            doc["errors"] = bounded_errors(self.errors)
        if self.data is not None:
            doc["data"] = self.data
        doc["request_id"] = request_id
        return doc


class ValidationFailed(ApiError):
    status, code, message = 400, "VALIDATION_FAILED", "Validation failed"

    @classmethod
    def field(cls, name: str, problem: str) -> "ValidationFailed":
        return cls(errors={name: [problem]})


class MalformedJson(ApiError):
    status, code, message = 400, "MALFORMED_JSON", "Request body is not valid JSON"


class Unauthenticated(ApiError):
    status, code, message = 401, "UNAUTHENTICATED", "Authentication required"

    def __init__(self, message: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        # RFC 6750 section 3: tell the client which scheme and that the token was the problem.
        self.headers.setdefault("WWW-Authenticate", 'Bearer error="invalid_token"')


class Forbidden(ApiError):
    status, code, message = 403, "FORBIDDEN", "You do not have permission to do this"


class NotFound(ApiError):
    status, code, message = 404, "NOT_FOUND", "Not found"


class MethodNotAllowed(ApiError):
    status, code, message = 405, "METHOD_NOT_ALLOWED", "Method not allowed"


class RequestTimeout(ApiError):
    status, code, message = 408, "REQUEST_TIMEOUT", "The request was not received in time"

    def __init__(self, message: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.headers.setdefault("Connection", "close")  # the rest of the body is not awaited


class Conflict(ApiError):
    status, code, message = 409, "CONFLICT", "Conflict"


class UnprocessableContent(ApiError):
    status, code, message = 422, "IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was used with a different request"


class PayloadTooLarge(ApiError):
    status, code, message = 413, "PAYLOAD_TOO_LARGE", "Request body is too large"


class UriTooLong(ApiError):
    status, code, message = 414, "URI_TOO_LONG", "The request URI is too long"


class UnsupportedMediaType(ApiError):
    status, code, message = 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json"


class RateLimited(ApiError):
    status, code, message = 429, "RATE_LIMITED", "Too many requests"


class HttpVersionNotSupported(ApiError):
    status, code, message = 505, "HTTP_VERSION_NOT_SUPPORTED", "Use HTTP/1.0, HTTP/1.1 or HTTP/2"


class HeadersTooLarge(ApiError):
    status, code, message = 431, "HEADERS_TOO_LARGE", "The request's header fields are too large"


class Internal(ApiError):
    pass


class BadGateway(ApiError):
    status, code, message = 502, "BAD_GATEWAY", "The backend answered with an error"


class BackendUnavailable(ApiError):
    status, code, message = 503, "BACKEND_UNAVAILABLE", "A backend service is unavailable"


class BackendTimeout(ApiError):
    status, code, message = 504, "BACKEND_TIMEOUT", "A backend service did not answer in time"


def for_status(status: int, message: str | None = None) -> ApiError:
    """The error for an HTTP status raised outside our code (Falcon, the server): its own class
    when we have one, else a code named after the status (`HTTPStatus` names, e.g.
    `REQUEST_TIMEOUT`), so no status but 500 is ever reported as INTERNAL."""
    kind = _BY_STATUS.get(status)
    if kind is not None:
        return kind(message)
    error = ApiError(message or _reason(status))
    error.status = status
    error.code = _status_code_name(status)
    return error


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _status_code_name(status: int) -> str:
    try:
        return HTTPStatus(status).name
    except ValueError:
        return f"HTTP_{status}"


_BY_STATUS: dict[int, type[ApiError]] = {
    cls.status: cls
    for cls in (ValidationFailed, Unauthenticated, Forbidden, NotFound, MethodNotAllowed, Conflict,
                PayloadTooLarge, UriTooLong, UnsupportedMediaType, RateLimited, HeadersTooLarge, Internal,
                BadGateway, BackendUnavailable, BackendTimeout)
}


def success(data: Any, message: str = "OK") -> dict[str, Any]:
    return {"success": True, "message": message, "data": data}
