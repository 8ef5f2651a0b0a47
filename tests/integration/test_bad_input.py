"""Every kind of bad input gets the envelope, the right status and code, and the field named.

Against the real gateway on Granian with real backends: nothing here is mocked.
"""

from __future__ import annotations

import uuid

import pytest

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"


def valid_registration(**overrides) -> dict:
    tag = uuid.uuid4().hex[:10]
    body = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"ada-{tag}@analytical.example",
        "password": "correct-horse-battery",
        "password_confirmation": "correct-horse-battery",
        "organization_name": f"Analytical Engines {tag}",
        "domain": f"analytical-{tag}.example",
    }
    body.update(overrides)
    return body


def assert_envelope(answer, status: int, code: str, field: str | None = None) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    doc = answer.json()
    assert doc["success"] is False
    assert doc["code"] == code
    assert doc["message"]
    assert doc["request_id"] == answer.headers["x-request-id"]
    if field is not None:
        assert field in doc["errors"], doc
        assert all(isinstance(p, str) and p for p in doc["errors"][field])
    return doc


def test_malformed_json_is_400_naming_the_body(http):
    answer = http.post(LOGIN, content=b'{"email": "a@b.example", "password": ', headers={"Content-Type": "application/json"})
    doc = assert_envelope(answer, 400, "MALFORMED_JSON", "body")
    assert "not valid JSON" in doc["errors"]["body"][0]


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"a string"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_400(http, payload):
    answer = http.post(LOGIN, content=payload, headers={"Content-Type": "application/json"})
    assert_envelope(answer, 400, "VALIDATION_FAILED", "body")


def test_missing_fields_are_each_named(http):
    doc = assert_envelope(http.post(REGISTER, json={}), 400, "VALIDATION_FAILED")
    assert set(doc["errors"]) == {
        "first_name", "last_name", "email", "password", "password_confirmation", "organization_name", "domain",
    }
    assert doc["errors"]["email"] == ["is required"]


def test_empty_body_reads_as_missing_fields(http):
    doc = assert_envelope(http.post(LOGIN), 400, "VALIDATION_FAILED")
    assert set(doc["errors"]) == {"email", "password"}


@pytest.mark.parametrize(
    "field, value, problem",
    [
        ("email", 42, "must be a string"),
        ("password", ["x"], "must be a string"),
        ("remember_me", "yes", "must be a boolean"),
        ("remember_me", 1, "must be a boolean"),
    ],
)
def test_wrong_types_are_named(http, field, value, problem):
    body = {"email": "admin@acme.example", "password": "whatever1", field: value}
    doc = assert_envelope(http.post(LOGIN, json=body), 400, "VALIDATION_FAILED", field)
    assert doc["errors"][field] == [problem]


def test_unknown_field_is_named(http):
    body = {"email": "admin@acme.example", "password": "whatever1", "is_admin": True}
    doc = assert_envelope(http.post(LOGIN, json=body), 400, "VALIDATION_FAILED", "is_admin")
    assert doc["errors"]["is_admin"] == ["is not a recognised field"]


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two@@example.com", "sp ace@example.com", "x" * 250 + "@example.com"])
def test_invalid_email(http, email):
    doc = assert_envelope(http.post(REGISTER, json=valid_registration(email=email)), 400, "VALIDATION_FAILED", "email")
    assert set(doc["errors"]) == {"email"}


def test_short_password(http):
    body = valid_registration(password="short", password_confirmation="short")
    doc = assert_envelope(http.post(REGISTER, json=body), 400, "VALIDATION_FAILED", "password")
    assert doc["errors"]["password"] == ["must be at least 8 characters"]


def test_password_confirmation_mismatch(http):
    body = valid_registration(password_confirmation="something-else-entirely")
    doc = assert_envelope(http.post(REGISTER, json=body), 400, "VALIDATION_FAILED", "password_confirmation")
    assert doc["errors"]["password_confirmation"] == ["must match password"]


def test_invalid_domain(http):
    assert_envelope(http.post(REGISTER, json=valid_registration(domain="not a domain")), 400, "VALIDATION_FAILED", "domain")


def test_duplicate_email_is_409(http):
    body = valid_registration()
    assert http.post(REGISTER, json=body).status_code == 201
    again = valid_registration(email=body["email"].upper())  # emails compare case-insensitively
    assert_envelope(http.post(REGISTER, json=again), 409, "CONFLICT")


def test_body_over_the_limit_is_413(http):
    big = b'{"email": "' + b"a" * (1024 * 1024 + 10) + b'@example.com", "password": "x"}'
    assert_envelope(http.post(LOGIN, content=big, headers={"Content-Type": "application/json"}), 413, "PAYLOAD_TOO_LARGE")


def test_chunked_body_over_the_limit_is_413(http):
    def chunks():
        yield b'{"email": "'
        for _ in range(40):
            yield b"a" * 32768
        yield b'"}'

    answer = http.post(LOGIN, content=chunks(), headers={"Content-Type": "application/json"})
    assert_envelope(answer, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_wrong_content_type_is_415(http, content_type):
    answer = http.post(LOGIN, content=b'{"email": "a@b.example", "password": "x"}', headers={"Content-Type": content_type})
    assert_envelope(answer, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type")


def test_json_with_charset_is_accepted(http):
    answer = http.post(
        LOGIN,
        content=b'{"email": "admin@acme.example", "password": "wrong-password"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert_envelope(answer, 401, "UNAUTHENTICATED")  # got past parsing to the auth service


@pytest.mark.parametrize("path", ["/nope", "/api/v1/auth/nope", "/api/v2/auth/login", "/api/v1/auth/me/extra"])
def test_unknown_route_is_404(http, path):
    doc = assert_envelope(http.get(path), 404, "NOT_FOUND")
    assert path in doc["message"]


@pytest.mark.parametrize("method, path", [("GET", LOGIN), ("DELETE", "/api/v1/auth/me"), ("PUT", "/health"), ("PATCH", REGISTER)])
def test_wrong_method_is_405_with_allow(http, method, path):
    answer = http.request(method, path)
    assert_envelope(answer, 405, "METHOD_NOT_ALLOWED")
    assert answer.headers.get("allow")


def test_wrong_credentials_are_401_without_saying_which(http):
    wrong_password = http.post(LOGIN, json={"email": "admin@acme.example", "password": "wrong-password"})
    unknown_user = http.post(LOGIN, json={"email": "nobody@acme.example", "password": "wrong-password"})
    a = assert_envelope(wrong_password, 401, "UNAUTHENTICATED")
    b = assert_envelope(unknown_user, 401, "UNAUTHENTICATED")
    assert a["message"] == b["message"]  # no user enumeration


def test_request_id_is_echoed_when_well_formed_and_replaced_when_not(http):
    good = http.get("/health", headers={"X-Request-ID": "req-1234abcd"})
    assert good.headers["x-request-id"] == "req-1234abcd"
    bad = http.get("/nope", headers={"X-Request-ID": "<script>" + "x" * 300})
    assert bad.headers["x-request-id"] != "<script>" + "x" * 300
    assert bad.json()["request_id"] == bad.headers["x-request-id"]


def test_security_headers_on_success_and_error(http):
    for answer in (http.get("/health"), http.get("/nope")):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
