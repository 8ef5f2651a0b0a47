"""`cached_now` (runtime.graphql.connections): a resolver's cached read answers with the data
itself when this worker's near cache holds it, so graphql-core has nothing to await; otherwise
it is the ordinary cached read, an awaitable. Real valkey-server, real near cache (made live
by hand: no Tracker connection here, and nothing writes while the test runs)."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from types import SimpleNamespace

import pytest

from emulator.valkey import EmbeddedValkey
from runtime.cache import Cache
from runtime.graphql.connections import cached_now
from runtime.near_cache import NearCache
from runtime.valkey_mux import ValkeyMux


@pytest.fixture(scope="module")
def server():
    with EmbeddedValkey() as running:
        yield running


def run(server, body, *, live: bool):
    async def go():
        mux = ValkeyMux(server.host, server.port)
        try:
            prefix = f"now-{uuid.uuid4().hex[:8]}:"
            near = NearCache(prefix + "cachever:", max_entries=100, max_bytes=1 << 20)
            near.live = live
            cache = Cache(mux, prefix, {"user_profile": SimpleNamespace(scope="user", ttl=60)}, near=near)
            principal = SimpleNamespace(user_id="u1", organization_id="o1")
            ctx = SimpleNamespace(principal=principal, deadline=time.monotonic() + 30,
                                  resources=SimpleNamespace(cache=cache))
            return await body(ctx, cache)
        finally:
            await mux.aclose()

    return asyncio.run(asyncio.wait_for(go(), 20))


def counting_load(calls: list):
    async def load():
        calls.append(1)
        return {"id": "u1", "loads": len(calls)}

    return load


def test_a_near_hit_is_the_data_itself(server):
    calls: list = []

    async def body(ctx, cache):
        first = cached_now(ctx, "user_profile", "/api/v1/auth/me", counting_load(calls))
        assert inspect.isawaitable(first)  # nothing held yet: the read goes to Valkey and the backend
        first = await first
        second = cached_now(ctx, "user_profile", "/api/v1/auth/me", counting_load(calls))
        other = cached_now(ctx, "user_profile", "/api/v1/other", counting_load(calls))
        assert inspect.isawaitable(other)  # another resource: not held
        await other
        return first, second, cache.stats["user_profile:hit"]

    first, second, hits = run(server, body, live=True)
    assert not inspect.isawaitable(second)
    assert second == first == {"id": "u1", "loads": 1}
    assert calls == [1, 1] and hits == 1


def test_a_blind_near_cache_is_not_trusted(server):
    calls: list = []

    async def body(ctx, cache):
        await cached_now(ctx, "user_profile", "/api/v1/auth/me", counting_load(calls))
        again = cached_now(ctx, "user_profile", "/api/v1/auth/me", counting_load(calls))
        assert inspect.isawaitable(again)  # invalidations are not arriving: read Valkey
        return await again

    assert run(server, body, live=False) == {"id": "u1", "loads": 1}  # Valkey's entry
    assert calls == [1]
