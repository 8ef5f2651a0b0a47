"""Undeclared query parameters are refused on every route, and declared ones reach a cache key
only in canonical form, so `?x=<random>` can neither bypass the cache nor fill Valkey (issue 9.3)."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import login

ME, LIST = "/api/v1/auth/me", "/api/v1/crm/customers"
PREFIX = "erp:gw:cache:"  # the default redis.key_prefix + the cache's


def bearer(session: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['access_token']}"}


def assert_refused(answer, *names: str) -> None:
    assert answer.status_code == 400, answer.text
    doc = answer.json()
    assert doc["success"] is False and doc["code"] == "VALIDATION_FAILED"
    assert doc["request_id"]
    assert set(doc["errors"]) == set(names), doc
    for name in names:
        assert doc["errors"][name] == ["is not a recognised query parameter"]


@pytest.mark.parametrize("method, path, auth, body", [
    ("GET", ME, True, None),
    ("GET", LIST, True, None),
    ("GET", "/api/v1/crm/customers/00000000-0000-0000-0000-000000000000", True, None),
    ("GET", "/health", False, None),
    ("GET", "/ready", False, None),
    ("GET", "/openapi.json", False, None),
    ("POST", "/api/v1/auth/refresh", False, {"refresh_token": "whatever"}),
    ("POST", "/api/v1/auth/login", False, {"email": "admin@acme.example", "password": "x"}),
])
def test_an_undeclared_parameter_is_a_400_naming_it_on_every_route(http, session, method, path, auth, body):
    headers = bearer(session) if auth else {}
    answer = http.request(method, path, params={"x": uuid.uuid4().hex}, headers=headers, json=body)
    assert_refused(answer, "x")


def test_blank_and_valueless_parameters_are_named_too(http, session):
    assert_refused(http.get(ME + "?x=", headers=bearer(session)), "x")
    assert_refused(http.get(ME + "?flag", headers=bearer(session)), "flag")
    assert_refused(http.get(LIST + "?page_size=5&bogus=1&other=", headers=bearer(session)), "bogus", "other")


def test_random_parameters_neither_bypass_the_cache_nor_fill_valkey(http, session, store):
    headers = bearer(session)
    http.get(ME, headers=headers)
    assert http.get(ME, headers=headers).headers["X-Cache"] == "HIT"
    before = sum(1 for _ in store.scan_iter(PREFIX + "*", count=1000))
    for _ in range(30):
        assert http.get(ME, params={"cb": uuid.uuid4().hex}, headers=headers).status_code == 400
        assert http.get(LIST, params={"page_size": 5, "cb": uuid.uuid4().hex}, headers=headers).status_code == 400
    assert sum(1 for _ in store.scan_iter(PREFIX + "*", count=1000)) == before
    assert http.get(ME, headers=headers).headers["X-Cache"] == "HIT"


def test_equivalent_declared_queries_share_one_entry(http):
    headers = bearer(login(http, "viewer@acme.example"))
    first = http.get(LIST + "?status=active&page_size=7", headers=headers)
    assert first.status_code == 200, first.text
    for same in ("?page_size=7&status=active", "?page_size=007&status=active"):
        assert http.get(LIST + same, headers=headers).headers["X-Cache"] == "HIT", same
    # The default, spelled out or left out, is one entry.
    http.get(LIST + "?status=lead", headers=headers)
    assert http.get(LIST + "?status=lead&page_size=20", headers=headers).headers["X-Cache"] == "HIT"
