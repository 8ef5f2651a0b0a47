"""CORS decisions from the `cors:` configuration (pure)."""

from __future__ import annotations

from runtime.config import load_config
from runtime.security.cors import Cors

APP = "https://app.example"


def cors(**env: str) -> Cors:
    base = {"ERP_CORS_ALLOWED_ORIGINS": APP}
    return Cors(load_config(env={**base, **{f"ERP_CORS_{k.upper()}": v for k, v in env.items()}}).cors)


def test_preflight_from_an_allowed_origin_reflects_requested_headers_when_any_is_allowed():
    answer = dict(cors().preflight(APP, "authorization, content-type"))
    assert answer["Access-Control-Allow-Origin"] == APP
    assert answer["Access-Control-Allow-Credentials"] == "true"
    assert answer["Access-Control-Allow-Methods"] == "GET, POST, PUT, PATCH, DELETE, OPTIONS"
    assert answer["Access-Control-Allow-Headers"] == "authorization, content-type"
    assert answer["Access-Control-Max-Age"] == "600"
    assert ("Vary", "Origin") in cors().preflight(APP, None)


def test_a_listed_set_of_headers_is_sent_as_configured():
    answer = dict(cors(allowed_headers="Authorization,Content-Type").preflight(APP, "x-evil"))
    assert answer["Access-Control-Allow-Headers"] == "Authorization, Content-Type"


def test_a_disallowed_origin_gets_no_cors_headers():
    c = cors()
    assert c.preflight("https://evil.example", "authorization") is None
    assert not any(name.startswith("Access-Control") for name, _ in c.actual("https://evil.example"))
    assert c.preflight(APP.upper(), None) is None  # origins compare exactly


def test_actual_request_gets_the_origin_itself_and_exposed_headers():
    answer = dict(cors(exposed_headers="X-Request-ID,RateLimit-Remaining").actual(APP))
    assert answer["Access-Control-Allow-Origin"] == APP
    assert answer["Access-Control-Expose-Headers"] == "X-Request-ID, RateLimit-Remaining"


def test_a_wildcard_without_credentials_answers_star():
    c = cors(allowed_origins="*", allow_credentials="false")
    answer = dict(c.actual("https://anyone.example"))
    assert answer["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in answer
