"""gRPC status -> the gateway's typed errors (DESIGN.md section 3).

Client-side problems (4xx) pass the backend's message through, since it names the field
or the conflict; server-side problems (5xx) never leak backend details.
"""

from __future__ import annotations

import re

import grpc

from runtime import errors

# Backends name the field as "field: problem" (the emulator does; ours should too).
_FIELD_DETAIL = re.compile(r"^([a-z_][a-z0-9_.]*): (.+)$")


def to_api_error(code: grpc.StatusCode, details: str | None) -> errors.ApiError:
    details = (details or "").strip()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        found = _FIELD_DETAIL.match(details)
        if found:
            return errors.ValidationFailed(errors={found[1]: [found[2]]})
        return errors.ValidationFailed(details or None)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return errors.Unauthenticated(details or None)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return errors.Forbidden(details or None)
    if code == grpc.StatusCode.NOT_FOUND:
        return errors.NotFound(details or None)
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return errors.Conflict(details or None)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return errors.RateLimited(headers={"Retry-After": "1"})
    if code == grpc.StatusCode.UNAVAILABLE:
        return errors.BackendUnavailable()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.BackendTimeout()
    return errors.BadGateway()


# Failures that say the backend is hurting (the circuit breaker counts these). Client
# errors (NOT_FOUND, INVALID_ARGUMENT, ...) prove the backend is up and answering.
BREAKER_CODES = frozenset({
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DATA_LOSS,
})
