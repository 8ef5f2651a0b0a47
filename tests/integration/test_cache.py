"""The Valkey cache, seen from outside: X-Cache, per-scope keys, single flight, invalidation,
and serving on when Valkey is down. Backend calls are counted at the emulator."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from emulator.processes import stop
from tests.conftest import StackThread, login
from tests.support import granian_env, poll_ready, start_gateway

GET_USER = "/erp.auth.v1.AuthService/GetUser"


def calls(stack, service: str, method: str) -> int:
    return stack.call(lambda: stack.stack.backends.servers[service].interceptor.calls[method])


def bearer(tokens: dict) -> dict:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def test_profile_is_cached_per_user(stack, http):
    admin, viewer = login(http, "admin@acme.example"), login(http, "viewer@acme.example")
    first = http.get("/api/v1/auth/me", headers=bearer(admin))
    second = http.get("/api/v1/auth/me", headers=bearer(admin))
    assert first.json()["data"] == second.json()["data"]
    assert second.headers["x-cache"] == "HIT"
    # Same path, another user: never the admin's entry.
    other = http.get("/api/v1/auth/me", headers=bearer(viewer))
    assert other.json()["data"]["email"] == "viewer@acme.example"


def test_hits_do_not_reach_the_backend(stack, http):
    tokens = login(http, "employee@acme.example")
    http.get("/api/v1/auth/me", headers=bearer(tokens))  # warm
    before = calls(stack, "auth", GET_USER)
    answers = [http.get("/api/v1/auth/me", headers=bearer(tokens)) for _ in range(20)]
    assert all(a.status_code == 200 and a.headers["x-cache"] == "HIT" for a in answers)
    assert calls(stack, "auth", GET_USER) == before


def test_single_flight_100_concurrent_requests_one_backend_call(stack, gateway):
    with gateway.client() as c:
        tokens = login(c, "employee@globex.example")

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30, limits=limits) as client:
            return await asyncio.gather(*(client.get("/api/v1/auth/me", headers=bearer(tokens)) for _ in range(100)))

    before = calls(stack, "auth", GET_USER)
    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [200] * 100
    assert calls(stack, "auth", GET_USER) - before == 1
    assert sum(a.headers["x-cache"] == "MISS" for a in answers) == 1


@pytest.fixture(scope="module")
def own_stack():
    running = StackThread()  # its own Valkey, which this module stops
    process, url = start_gateway(granian_env(running.environment()))
    yield running, url
    stop(process)
    running.close()


def test_valkey_down_serves_from_backends_and_ready_is_degraded(own_stack):
    stack, url = own_stack
    with httpx.Client(base_url=url, timeout=10) as c:
        tokens = login(c, "manager@acme.example")
        assert c.get("/api/v1/auth/me", headers=bearer(tokens)).status_code == 200
        stack.stack.valkey.stop()
        try:
            before = calls(stack, "auth", GET_USER)
            answers = [c.get("/api/v1/auth/me", headers=bearer(tokens)) for _ in range(3)]
            assert [a.status_code for a in answers] == [200] * 3, answers[0].text
            assert all(a.headers["x-cache"] == "MISS" for a in answers)
            assert calls(stack, "auth", GET_USER) - before == 3
            ready = poll_ready(url, lambda a: a.json()["data"]["dependencies"]["valkey"]["status"] == "down")
            assert ready.status_code == 200
            assert ready.json()["data"]["status"] == "degraded"
            assert ready.json()["data"]["dependencies"]["valkey"]["status"] == "down"
        finally:
            stack.stack.valkey.start()


def test_writes_through_the_gateway_invalidate_items_and_lists(stack, http):
    headers = bearer(login(http, "sales-manager@acme.example"))
    customers = http.get("/api/v1/crm/customers", headers=headers).json()["data"]["items"]
    item = f"/api/v1/crm/customers/{customers[0]['id']}"

    http.get(item, headers=headers)
    assert http.get(item, headers=headers).headers["x-cache"] == "HIT"
    http.get("/api/v1/crm/customers", headers=headers)
    assert http.get("/api/v1/crm/customers", headers=headers).headers["x-cache"] == "HIT"

    patched = http.patch(item, headers=headers, json={"phone": "+1 555 0100"})
    assert patched.status_code == 200, patched.text
    after = http.get(item, headers=headers)
    assert after.headers["x-cache"] == "MISS"
    assert after.json()["data"]["phone"] == "+1 555 0100"
    assert http.get("/api/v1/crm/customers", headers=headers).headers["x-cache"] == "MISS"

    created = http.post("/api/v1/crm/customers", headers=headers, json={"name": "Cache Probe Ltd", "email": "probe@cache.example"})
    assert created.status_code == 201, created.text
    listed = http.get("/api/v1/crm/customers", headers=headers, params={"page_size": 100})
    assert listed.headers["x-cache"] == "MISS"
    assert created.json()["data"]["id"] in {c["id"] for c in listed.json()["data"]["items"]}


def test_query_order_does_not_split_entries(http):
    headers = bearer(login(http, "sales-manager@acme.example"))
    http.get("/api/v1/crm/customers?page_size=3&status=active", headers=headers)
    swapped = http.get("/api/v1/crm/customers?status=active&page_size=3", headers=headers)
    assert swapped.headers["x-cache"] == "HIT"
