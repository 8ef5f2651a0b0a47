"""A signed-in cached read is served from the near cache with the synced rate limit (no Valkey
write at all); without them it reads Valkey, and the order of outcomes (401 -> 429 -> 403 ->
cache) holds without leaving fill locks.

The gateway runs in this process (falcon's ASGI conductor, real Valkey and backends from
`stack`) so that the request path's Valkey writes can be counted: each `_Connection._flush`
is one `transport.write`. Counting writes, not timing, keeps this deterministic.
"""

from __future__ import annotations

import asyncio

import pytest
from falcon.testing import ASGIConductor

from runtime import valkey_mux
from runtime.app import build_app
from runtime.config import load_config
from tests.support import delete_keys, DEMO_PASSWORD, granian_env

PREFIX = "round-trip-test:"


@pytest.fixture()
def writes(monkeypatch) -> list[int]:
    """How many times the request path's Valkey client wrote to its socket: [count]."""
    count = [0]
    flush = valkey_mux._Connection._flush

    def counting_flush(self) -> None:
        if self._outbox and self.error is None:
            count[0] += 1
        flush(self)

    monkeypatch.setattr(valkey_mux._Connection, "_flush", counting_flush)
    return count


@pytest.fixture()
def valkey_client(store):
    delete_keys(store, PREFIX + "*")  # fresh budgets and an empty cache
    return store


def run(stack, check, **env: str):
    """`check(conductor)` against a gateway app built in this process with its own key prefix."""
    config = load_config(env=granian_env(stack.environment(), ERP_REDIS_KEY_PREFIX=PREFIX, **env))

    async def go():
        async with ASGIConductor(build_app(config)) as conductor:
            return await check(conductor)

    return asyncio.run(go())


async def sign_in(conductor, email: str) -> dict:
    answer = await conductor.simulate_post("/api/v1/auth/login", json={"email": email, "password": DEMO_PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": "Bearer " + answer.json["data"]["access_token"]}


async def near_cache_live(conductor) -> None:
    """Wait until this worker's invalidation connection is up (the near cache serves only then)."""
    for _ in range(200):
        ready = await conductor.simulate_get("/ready")
        if ready.json["data"]["dependencies"]["valkey"].get("near_cache") == "live":
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the near cache never went live")


def test_a_cached_read_served_near_makes_no_valkey_round_trip(stack, writes, valkey_client):
    async def check(conductor):
        await near_cache_live(conductor)
        auth = await sign_in(conductor, "employee@acme.example")
        first = await conductor.simulate_get("/api/v1/auth/me", headers=auth)
        before = writes[0]
        second = await conductor.simulate_get("/api/v1/auth/me", headers=auth)
        return first, second, writes[0] - before

    # No background sync during the test: only what the request itself sends is counted.
    first, second, written = run(stack, check, ERP_RATE_LIMITS_SYNC_INTERVAL="1h")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    # Both were counted locally. GCRA refills one request per window/limit (60 µs at the test's
    # limit), so the second may find the first's unit back: remaining is limit-1 or limit-2.
    limit = int(second.headers["RateLimit-Limit"])
    assert limit - 2 <= int(second.headers["RateLimit-Remaining"]) <= int(first.headers["RateLimit-Remaining"]) == limit - 1
    assert written == 0  # the synced rate limit and the near cache: nothing leaves the worker


@pytest.mark.parametrize("mode,expected", [("synced", 1), ("exact", 2)])
def test_without_the_near_cache_a_cached_read_goes_to_valkey(stack, writes, valkey_client, mode, expected):
    async def check(conductor):
        auth = await sign_in(conductor, "employee@acme.example")
        first = await conductor.simulate_get("/api/v1/auth/me", headers=auth)
        before = writes[0]
        second = await conductor.simulate_get("/api/v1/auth/me", headers=auth)
        return first, second, writes[0] - before

    first, second, written = run(stack, check, ERP_CACHE_NEAR="false", ERP_RATE_LIMITS_SYNC_INTERVAL="1h",
                                 ERP_RATE_LIMITS_POLICIES_USER_MODE=mode)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert "RateLimit-Remaining" in second.headers
    assert written == expected  # the cache read, after the rate-limit script when that is exact


def test_a_refused_read_serves_nothing_and_leaves_no_fill_lock(stack, writes, valkey_client):
    async def check(conductor):
        auth = await sign_in(conductor, "viewer@acme.example")
        spent = await conductor.simulate_get("/api/v1/crm/customers", headers=auth)  # the one request allowed
        customer = spent.json["data"]["items"][0]["id"]
        # Cold: the read sent with the (refusing) rate limit took the fill lock.
        refused = await conductor.simulate_get(f"/api/v1/crm/customers/{customer}", headers=auth)
        # 429 before 403: the viewer may not read invoices, but is over budget first.
        forbidden_too = await conductor.simulate_get(f"/api/v1/finance/invoices/{customer}", headers=auth)
        return spent, refused, forbidden_too

    spent, refused, forbidden_too = run(stack, check, ERP_RATE_LIMITS_POLICIES_USER_LIMIT="1",
                                        ERP_RATE_LIMITS_POLICIES_USER_WINDOW="10m")
    assert spent.status_code == 200
    assert refused.status_code == 429 and "X-Cache" not in refused.headers
    assert refused.json["code"] == "RATE_LIMITED" and "data" not in refused.json
    assert forbidden_too.status_code == 429
    assert list(valkey_client.scan_iter(PREFIX + "cache:*:fill")) == []


def test_a_forbidden_read_is_refused_before_the_cache(stack, writes, valkey_client):
    async def check(conductor):
        auth = await sign_in(conductor, "viewer@acme.example")
        return await conductor.simulate_get("/api/v1/finance/invoices/00000000-0000-0000-0000-000000000000",
                                            headers=auth)

    answer = run(stack, check)
    assert answer.status_code == 403 and "X-Cache" not in answer.headers
    assert "RateLimit-Remaining" in answer.headers  # counted, as before authorization
    assert list(valkey_client.scan_iter(PREFIX + "cache:*")) == []


# GraphQL: `me` reads the same cache entry as GET /api/v1/auth/me, after the same rate limit.

ME = {"query": "{ me { id } }"}


def get_user_calls(stack) -> int:
    name = "/erp.auth.v1.AuthService/GetUser"
    return stack.call(lambda: stack.stack.backends.servers["auth"].interceptor.calls[name])


async def graphql_me_twice(stack, conductor, writes):
    """Two `{ me { id } }`: (first, second, Valkey writes and GetUser calls during the second)."""
    auth = await sign_in(conductor, "employee@acme.example")
    first = await conductor.simulate_post("/graphql", json=ME, headers=auth)
    before, calls = writes[0], get_user_calls(stack)
    second = await conductor.simulate_post("/graphql", json=ME, headers=auth)
    return first, second, writes[0] - before, get_user_calls(stack) - calls


def test_a_graphql_read_served_near_makes_no_valkey_round_trip(stack, writes, valkey_client):
    async def check(conductor):
        await near_cache_live(conductor)
        return await graphql_me_twice(stack, conductor, writes)

    first, second, written, loaded = run(stack, check, ERP_RATE_LIMITS_SYNC_INTERVAL="1h")
    assert first.status_code == second.status_code == 200, second.text
    assert first.json == second.json and second.json["data"]["me"]["id"]
    assert "RateLimit-Remaining" in second.headers  # counted, locally
    assert loaded == 0  # served from the cache, not the backend
    assert written == 0  # the synced rate limit and the near cache: nothing leaves the worker


@pytest.mark.parametrize("mode,expected", [("synced", 1), ("exact", 2)])
def test_without_the_near_cache_a_graphql_read_goes_to_valkey(stack, writes, valkey_client, mode, expected):
    async def check(conductor):
        return await graphql_me_twice(stack, conductor, writes)

    first, second, written, loaded = run(stack, check, ERP_CACHE_NEAR="false", ERP_RATE_LIMITS_SYNC_INTERVAL="1h",
                                         ERP_RATE_LIMITS_POLICIES_USER_MODE=mode)
    assert first.status_code == second.status_code == 200, second.text
    assert first.json == second.json
    assert loaded == 0  # a hit in Valkey's cache
    assert written == expected  # the cache read, after the rate-limit script when that is exact
