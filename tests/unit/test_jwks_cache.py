"""JwksCache with an injected fetch and clock: when it fetches, and what it keeps."""

from __future__ import annotations

import asyncio
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from runtime.auth.jwks import JwksCache


def _jwk(kid: str) -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return {**RSAAlgorithm.to_jwk(key, as_dict=True), "kid": kid, "alg": "RS256", "use": "sig"}


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


KEYS = {kid: _jwk(kid) for kid in ("k1", "k2")}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeJwks:
    """What the JWKS host answers; counts fetches; can be down or slow."""

    def __init__(self, *kids: str) -> None:
        self.kids = list(kids)
        self.calls = 0
        self.down = False
        self.gate: threading.Event | None = None  # set: a fetch blocks until released

    def __call__(self, url: str, timeout: float) -> dict:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(5)
        if self.down:
            raise ConnectionRefusedError("jwks host down")
        return {"keys": [KEYS[k] for k in self.kids]}


def make(fetch: FakeJwks, clock: Clock, **kw) -> JwksCache:
    options = {"cache_duration": 60.0, "refetch_interval": 10.0, **kw}
    return JwksCache("http://jwks.test/", algorithms=("RS256",), fetch=fetch, clock=clock, **options)


async def settle(cache: JwksCache) -> None:
    """Let a background refresh finish."""
    while cache._inflight is not None:
        await asyncio.sleep(0.001)


async def test_known_kid_fetches_once_and_is_served_from_memory():
    fetch, clock = FakeJwks("k1"), Clock()
    cache = make(fetch, clock)
    assert (await cache.key("k1")).key_id == "k1"
    for _ in range(50):
        assert await cache.key("k1") is not None
    assert fetch.calls == 1


async def test_concurrent_first_requests_share_one_fetch():
    fetch, clock = FakeJwks("k1"), Clock()
    fetch.gate = threading.Event()
    cache = make(fetch, clock)
    waiting = [asyncio.create_task(cache.key("k1")) for _ in range(20)]
    while fetch.calls == 0:  # the fetch is blocked in its thread; every task has asked by then
        await asyncio.sleep(0.001)
    fetch.gate.set()
    assert all(k is not None for k in await asyncio.gather(*waiting))
    assert fetch.calls == 1


async def test_random_kid_flood_costs_one_fetch_per_interval():
    fetch, clock = FakeJwks("k1"), Clock()
    cache = make(fetch, clock, cache_duration=1.0, refetch_interval=10.0)
    await cache.key("k1")
    clock.now += 10
    for i in range(100):  # keys are stale too: neither path may fetch more than the gate allows
        assert await cache.key(f"random-{i}") is None
        assert await cache.key("k1") is not None
        clock.now += 0.05  # 100 tokens over 5 s
    await settle(cache)
    assert fetch.calls == 2  # the first, and one for the whole flood
    clock.now += 10
    await cache.key("random-again")
    assert fetch.calls == 3


async def test_rotated_key_is_found_by_one_refetch():
    fetch, clock = FakeJwks("k1"), Clock()
    cache = make(fetch, clock)
    await cache.key("k1")
    fetch.kids = ["k2", "k1"]  # rotation: k2 current, k1 retired but still published
    clock.now += 10
    assert (await cache.key("k2")).key_id == "k2"
    assert await cache.key("k1") is not None
    assert fetch.calls == 2


async def test_known_keys_keep_working_while_the_jwks_host_is_down():
    fetch, clock = FakeJwks("k1"), Clock()
    cache = make(fetch, clock, cache_duration=5.0)
    await cache.key("k1")
    fetch.down = True
    for _ in range(5):
        clock.now += 20  # stale, and every refresh fails
        assert await cache.key("k1") is not None
        await settle(cache)
    assert fetch.calls == 6
    assert cache.kids == ("k1",)


async def test_stale_known_key_answers_without_waiting_for_the_refresh():
    fetch, clock = FakeJwks("k1"), Clock()
    cache = make(fetch, clock, cache_duration=5.0)
    await cache.key("k1")
    fetch.gate = threading.Event()  # the next fetch hangs
    clock.now += 20
    assert await asyncio.wait_for(cache.key("k1"), 0.5) is not None
    assert cache._inflight is not None  # revalidating in the background
    fetch.gate.set()
    await settle(cache)
    assert fetch.calls == 2


async def test_a_key_no_longer_published_is_dropped():
    fetch, clock = FakeJwks("k1", "k2"), Clock()
    cache = make(fetch, clock, cache_duration=5.0)
    await cache.key("k1")
    fetch.kids = ["k2"]
    clock.now += 20
    await cache.key("k1")  # stale: triggers the refresh
    await settle(cache)
    assert await cache.key("k1") is None
    assert await cache.key("k2") is not None


async def test_startup_with_the_jwks_host_down_retries_soon_but_not_per_request():
    fetch, clock = FakeJwks("k1"), Clock()
    fetch.down = True
    cache = make(fetch, clock, refetch_interval=30.0, empty_retry=1.0)
    for _ in range(50):
        assert await cache.key("k1") is None
    assert fetch.calls == 1  # no herd against a host that is down
    fetch.down = False
    clock.now += 1.0  # not the full 30 s: with no keys nothing can be verified
    assert await cache.key("k1") is not None
    assert fetch.calls == 2


async def test_start_prefetches_in_the_background():
    fetch, clock = FakeJwks("k1"), Clock()
    cache = make(fetch, clock)
    cache.start()
    await settle(cache)
    assert fetch.calls == 1 and cache.kids == ("k1",)
    await cache.key("k1")
    assert fetch.calls == 1


@pytest.mark.parametrize(
    "document",
    [
        {"keys": []},
        {"keys": [{**KEYS["k1"], "use": "enc"}]},
        {"keys": [{**KEYS["k1"], "alg": "HS256"}]},
        {"keys": [{"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}]},
        {"keys": ["not-an-object"]},
        ["not", "a", "jwks"],
    ],
)
async def test_an_unusable_jwks_keeps_the_keys_we_have(document):
    fetch, clock = FakeJwks("k1"), Clock()
    cache = make(fetch, clock)
    await cache.key("k1")
    cache._fetch = lambda url, timeout: document
    clock.now += 100
    await cache.key("unknown")
    assert fetch.calls == 1 and cache.fetches == 2
    assert cache.kids == ("k1",)


async def test_a_junk_kid_cannot_keep_a_rotated_key_out_past_one_poll():
    """The junk token spends the unknown-kid allowance; the scheduled poll still finds the
    genuinely new key (and does not spend that allowance itself)."""
    fetch, clock = FakeJwks("k1"), Clock()
    cache = make(fetch, clock, poll_interval=0.05)
    assert await cache.key("k1") is not None
    clock.now += 11  # the unknown-kid gate is open...
    assert await cache.key("junk") is None  # ...and the junk token spends it
    fetch.kids = ["k1", "k2"]  # the auth service rotates
    assert await cache.key("k2") is None  # refused at once: the gate is closed for 10 s
    calls, gate_opened_at = fetch.calls, cache._attempted_at
    cache.start()
    try:
        for _ in range(200):  # real time: poll_interval 50 ms
            await asyncio.sleep(0.01)
            if cache.has("k2"):
                break
        assert cache.has("k2")
        assert (await cache.key("k2")).key_id == "k2"
        assert fetch.calls >= calls + 1
        assert cache._attempted_at == gate_opened_at  # polls do not spend the unknown-kid allowance
    finally:
        await cache.close()


async def test_a_poll_drops_a_withdrawn_key():
    fetch, clock = FakeJwks("k1", "k2"), Clock()
    cache = make(fetch, clock, poll_interval=0.02)
    assert await cache.key("k1") is not None
    fetch.kids = ["k2"]  # k1 withdrawn, no grace period
    cache.start()
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if not cache.has("k1"):
                break
        assert not cache.has("k1") and cache.has("k2")
    finally:
        await cache.close()


async def test_with_the_gate_closed_a_new_kid_waits_for_the_next_poll_instead_of_a_refusal():
    fetch, clock = FakeJwks("k1"), Clock()
    cache = make(fetch, clock, poll_interval=0.1)
    assert await cache.key("k1") is not None  # the gate is now closed for 10 s (fake clock)
    cache.start()
    try:
        fetch.kids = ["k1", "k2"]  # rotated
        started = asyncio.get_running_loop().time()
        key = await cache.key("k2")  # first request with the new key
        waited = asyncio.get_running_loop().time() - started
        assert key is not None and key.key_id == "k2"
        assert waited < 1.0
        assert await cache.key("junk") is None  # a junk kid waits as long, then is refused
    finally:
        await cache.close()
