"""Security headers on every response (no HSTS without TLS; with TLS: test_tls.py), and
per-route body limits."""

from __future__ import annotations

import pytest

HSTS = "Strict-Transport-Security"


@pytest.mark.parametrize("path", ["/health", "/no/such/route"])
def test_every_answer_carries_the_security_headers_and_no_hsts_without_tls(http, path):
    h = http.get(path).headers
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["X-Frame-Options"] == "DENY"
    assert h["Referrer-Policy"] == "no-referrer"
    assert HSTS not in h


def test_a_route_s_own_body_limit_applies(http):
    big = {"refresh_token": "x" * 5000}  # over refresh's 4 KiB, far under the server's 1 MiB
    answer = http.post("/api/v1/auth/refresh", json=big)
    assert answer.status_code == 413, answer.text
    assert answer.json()["code"] == "PAYLOAD_TOO_LARGE"
    # The same size elsewhere is judged on its content, not its size.
    other = http.post("/api/v1/auth/login", json={"email": "a@b.example", "password": "x" * 5000})
    assert other.status_code == 400 and other.json()["code"] == "VALIDATION_FAILED"


def test_a_chunked_body_without_content_length_is_cut_off_at_the_route_limit(http):
    def chunks():
        yield b'{"refresh_token": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    answer = http.post("/api/v1/auth/refresh", content=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413, answer.text
