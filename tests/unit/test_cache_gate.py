"""Cache.fetch with a gate (the rate limit) on a real valkey-server: a refused request that
was reading a key for others of its worker hands the read over instead of failing them."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
import valkey

from emulator.valkey import EmbeddedValkey
from runtime.cache import Cache
from runtime.errors import RateLimited
from runtime.valkey_mux import ValkeyMux


@pytest.fixture(scope="module")
def server():
    with EmbeddedValkey() as running:
        yield running


def test_a_refused_leader_hands_the_read_to_an_admitted_waiter(server):
    ctx = SimpleNamespace(principal=SimpleNamespace(user_id="u1", organization_id="o1"), deadline=time.monotonic() + 30)
    loads = []

    async def load():
        loads.append(1)
        return {"loaded": len(loads)}

    async def refuse():
        await asyncio.sleep(0.05)  # the waiter is queued on the leader's read by then
        raise RateLimited()

    async def admit():
        return None

    async def go():
        mux = ValkeyMux(server.host, server.port)
        try:
            cache = Cache(mux, "gate-test:", {"p": SimpleNamespace(scope="user", ttl=60)})
            leader = asyncio.create_task(cache.fetch(ctx, "p", "/x", load, refuse()))
            await asyncio.sleep(0)  # the leader registers its read
            waiter = await cache.fetch(ctx, "p", "/x", load, admit())
            with pytest.raises(RateLimited):
                await leader
            return waiter, dict(cache.stats)
        finally:
            await mux.aclose()

    waiter, stats = asyncio.run(go())
    assert waiter == ({"loaded": 1}, False) and loads == [1]
    assert stats == {"p:miss": 1}  # the refused leader counted nothing
    client = valkey.Valkey(host=server.host, port=server.port)
    try:
        assert list(client.scan_iter("gate-test:*:fill")) == []
    finally:
        client.close()
