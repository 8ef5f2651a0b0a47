"""Cache.fetch's single flight on a real valkey-server: the request that starts a load and the
requests that wait for it each keep their own fate (issue 9.7)."""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace

import pytest

from emulator.valkey import EmbeddedValkey
from runtime.cache import Cache
from runtime.errors import BackendTimeout, NotFound
from runtime.valkey_mux import ValkeyMux


@pytest.fixture(scope="module")
def server():
    with EmbeddedValkey() as running:
        yield running


def ctx(budget: float = 30):
    return SimpleNamespace(principal=SimpleNamespace(user_id="u1", organization_id="o1"),
                           deadline=time.monotonic() + budget)


def scenario(server, body):
    async def go():
        mux = ValkeyMux(server.host, server.port)
        try:
            cache = Cache(mux, f"sf-{uuid.uuid4().hex[:8]}:", {"p": SimpleNamespace(scope="user", ttl=60)})
            return await body(cache)
        finally:
            await mux.aclose()

    return asyncio.run(asyncio.wait_for(go(), 20))


def slow_load(calls: list, seconds: float = 0.2, result=None):
    async def load():
        calls.append(1)
        await asyncio.sleep(seconds)
        if isinstance(result, Exception):
            raise result
        return {"loaded": len(calls)}

    return load


async def started(cache: Cache) -> None:
    """Until the first request's load is running (it registered itself for the others)."""
    while not cache._inflight:
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.02)


def test_a_cancelled_starter_does_not_cancel_its_followers(server):
    calls: list = []

    async def body(cache):
        load = slow_load(calls)
        starter = asyncio.create_task(cache.fetch(ctx(), "p", "/x", load))
        await started(cache)
        follower = asyncio.create_task(cache.fetch(ctx(), "p", "/x", load))
        await asyncio.sleep(0.02)
        starter.cancel()  # its client went away
        with pytest.raises(asyncio.CancelledError):
            await starter
        return await follower, await cache.fetch(ctx(), "p", "/x", load)

    follower, later = scenario(server, body)
    assert follower == ({"loaded": 1}, True)
    assert later == ({"loaded": 1}, True)  # the load finished and filled the cache
    assert calls == [1]


def test_a_starter_with_a_short_deadline_times_out_alone(server):
    calls: list = []

    async def body(cache):
        load = slow_load(calls, seconds=0.3)
        starter = asyncio.create_task(cache.fetch(ctx(budget=0.1), "p", "/x", load))
        await started(cache)
        follower = await cache.fetch(ctx(), "p", "/x", load)
        with pytest.raises(BackendTimeout):
            await starter
        return follower

    assert scenario(server, body) == ({"loaded": 1}, True)
    assert calls == [1]


def test_a_follower_with_a_short_deadline_times_out_alone(server):
    calls: list = []

    async def body(cache):
        load = slow_load(calls, seconds=0.3)
        starter = asyncio.create_task(cache.fetch(ctx(), "p", "/x", load))
        await started(cache)
        with pytest.raises(BackendTimeout):
            await cache.fetch(ctx(budget=0.05), "p", "/x", load)
        return await starter

    assert scenario(server, body) == ({"loaded": 1}, False)


def test_the_backend_answer_is_everyone_s_answer(server):
    calls: list = []

    async def body(cache):
        load = slow_load(calls, result=NotFound("no such customer"))
        starter = asyncio.create_task(cache.fetch(ctx(), "p", "/x", load))
        await started(cache)
        with pytest.raises(NotFound):
            await cache.fetch(ctx(), "p", "/x", load)
        with pytest.raises(NotFound):
            await starter
        return cache._inflight

    assert scenario(server, body) == {}
    assert calls == [1]
