"""CORS on the real gateway (default `cors:` config: http://localhost:3000, credentials on)."""

from __future__ import annotations

ALLOWED = "http://localhost:3000"
EVIL = "https://evil.example"


def cors_headers(answer) -> dict[str, str]:
    return {k: v for k, v in answer.headers.items() if k.lower().startswith("access-control-")}


def preflight(http, origin: str, path: str = "/api/v1/auth/me"):
    return http.options(path, headers={
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, x-request-id",
    })


def test_preflight_from_an_allowed_origin_needs_no_token_even_on_an_auth_route(http):
    answer = preflight(http, ALLOWED)
    assert answer.status_code == 204, answer.text
    assert answer.content == b""
    h = answer.headers
    assert h["Access-Control-Allow-Origin"] == ALLOWED
    assert h["Access-Control-Allow-Credentials"] == "true"
    assert "GET" in h["Access-Control-Allow-Methods"].split(", ")
    assert h["Access-Control-Allow-Headers"] == "authorization, x-request-id"  # "*" reflects the request
    assert h["Access-Control-Max-Age"] == "600"
    assert "Origin" in h["Vary"]
    assert h["X-Request-ID"] and h["X-Content-Type-Options"] == "nosniff"


def test_preflight_from_a_disallowed_origin_is_refused_without_cors_headers(http):
    answer = preflight(http, EVIL)
    assert answer.status_code == 403
    assert answer.json()["code"] == "FORBIDDEN"
    assert cors_headers(answer) == {}


def test_actual_requests_from_an_allowed_origin_can_read_the_answer_even_an_error(http):
    ok = http.get("/health", headers={"Origin": ALLOWED})
    assert ok.headers["Access-Control-Allow-Origin"] == ALLOWED
    exposed = ok.headers["Access-Control-Expose-Headers"].split(", ")
    assert {"X-Request-ID", "RateLimit-Remaining", "Retry-After"} <= set(exposed)
    assert "Origin" in ok.headers["Vary"]
    refused = http.get("/api/v1/auth/me", headers={"Origin": ALLOWED})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_actual_requests_from_a_disallowed_origin_get_no_cors_headers(http):
    answer = http.get("/health", headers={"Origin": EVIL})
    assert answer.status_code == 200
    assert cors_headers(answer) == {}
    assert cors_headers(http.get("/health")) == {}  # nor does a same-origin request
