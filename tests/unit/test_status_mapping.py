from __future__ import annotations

import grpc
import pytest

from runtime import errors
from runtime.backends.status import to_api_error


@pytest.mark.parametrize(
    "code, status, api_code",
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400, "VALIDATION_FAILED"),
        (grpc.StatusCode.UNAUTHENTICATED, 401, "UNAUTHENTICATED"),
        (grpc.StatusCode.PERMISSION_DENIED, 403, "FORBIDDEN"),
        (grpc.StatusCode.NOT_FOUND, 404, "NOT_FOUND"),
        (grpc.StatusCode.ALREADY_EXISTS, 409, "CONFLICT"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "RATE_LIMITED"),
        (grpc.StatusCode.UNAVAILABLE, 503, "BACKEND_UNAVAILABLE"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504, "BACKEND_TIMEOUT"),
        (grpc.StatusCode.INTERNAL, 502, "BAD_GATEWAY"),
        (grpc.StatusCode.UNKNOWN, 502, "BAD_GATEWAY"),
        (grpc.StatusCode.DATA_LOSS, 502, "BAD_GATEWAY"),
    ],
)
def test_grpc_status_to_http(code, status, api_code):
    error = to_api_error(code, "details")
    assert (error.status, error.code) == (status, api_code)


def test_field_named_in_details_becomes_a_field_error():
    error = to_api_error(grpc.StatusCode.INVALID_ARGUMENT, "email: must be a valid email address")
    assert error.errors == {"email": ["must be a valid email address"]}


def test_server_errors_do_not_leak_backend_details():
    for code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        assert "secret stack" not in to_api_error(code, "secret stack trace").message


def test_envelope_shape():
    error = errors.ValidationFailed.field("email", "is required")
    assert error.body("rid-1") == {
        "success": False, "message": "Validation failed", "code": "VALIDATION_FAILED",
        "errors": {"email": ["is required"]}, "request_id": "rid-1",
    }
    assert errors.Unauthenticated().headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
