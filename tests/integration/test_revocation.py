"""Revocation everywhere: two gateway instances share one Valkey.

The gateway-level tests run two Granian processes (B with two workers, so every worker must
learn of a revocation); the RevocationList tests run in this process against the same
Valkey, with their own key prefix, to look at what a worker holds.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import jwt
import pytest
import valkey
import valkey.asyncio as valkey_asyncio

from runtime.auth.revocation import RevocationList
from runtime.valkey_mux import ValkeyMux
from tests.support import DEMO_PASSWORD, gateways, granian_env

ME = "/api/v1/auth/me"
PREFIX = "erp:gw:"  # the default redis.key_prefix
LEEWAY = 10  # the default jwt.leeway


@pytest.fixture(scope="module")
def instances(stack):
    """Two gateway instances on one Valkey: A (1 worker) and B (2 workers)."""
    env = granian_env(stack.environment())
    with gateways(env, env, workers=(1, 2)) as (url_a, url_b), \
            httpx.Client(base_url=url_a, timeout=10) as ca, httpx.Client(base_url=url_b, timeout=10) as cb:
        yield ca, cb


def sign_in(client: httpx.Client) -> dict:
    answer = client.post("/api/v1/auth/login", json={"email": "admin@acme.example", "password": DEMO_PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def me(client: httpx.Client, token: str) -> int:
    return client.get(ME, headers={"Authorization": f"Bearer {token}"}).status_code


def exists_calls(store: valkey.Valkey) -> int:
    return store.info("commandstats").get("cmdstat_exists", {}).get("calls", 0)


def wait_synced(client: httpx.Client, token: str, store: valkey.Valkey, timeout: float = 5) -> None:
    """Until requests stop paying EXISTS: every worker's feed is subscribed and reloaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = exists_calls(store)
        for _ in range(6):
            assert me(client, token) == 200
        if exists_calls(store) == before:
            return
        time.sleep(0.05)
    raise AssertionError("revocation feed never synced")


def test_logout_through_a_is_refused_by_b_within_a_second(instances, store):
    a, b = instances
    session = sign_in(a)
    token = session["access_token"]
    wait_synced(b, token, store)  # B has verified and cached the token: the common path
    logout = a.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"},
                    json={"refresh_token": session["refresh_token"]})
    assert logout.status_code == 200, logout.text
    logged_out = time.monotonic()
    first_401 = None
    while time.monotonic() - logged_out < 3:
        if me(b, token) == 401:
            first_401 = time.monotonic() - logged_out
            break
    assert first_401 is not None and first_401 < 1.0, first_401
    print(f"\nrevocation reached instance B {first_401 * 1000:.1f} ms after logout returned")
    assert [me(b, token) for _ in range(10)] == [401] * 10  # both of B's workers
    assert me(a, token) == 401


def test_the_common_path_pays_no_valkey_round_trip_for_revocation(instances, store):
    _, b = instances
    token = sign_in(b)["access_token"]
    wait_synced(b, token, store)
    before = exists_calls(store)
    for _ in range(50):
        assert me(b, token) == 200
    assert exists_calls(store) == before
    assert b.get("/ready").json()["data"]["dependencies"]["valkey"]["revocations"] == "synced"


def test_the_revocation_key_expires_with_the_token(instances, store):
    a, _ = instances
    token = sign_in(a)["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert a.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}, json={}).status_code == 200
    ttl = store.ttl(PREFIX + "revoked:" + claims["jti"])
    remaining = claims["exp"] - time.time()
    # exp - now, plus the leeway during which the verifier would still accept the token
    assert remaining - 2 <= ttl <= remaining + LEEWAY + 2, (ttl, remaining)


def test_reusing_a_spent_refresh_token_revokes_the_family(instances):
    a, b = instances
    signed_in = sign_in(a)
    first = signed_in["refresh_token"]
    answer = a.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert answer.status_code == 200, answer.text
    second = answer.json()["data"]["refresh_token"]
    access_tokens = (signed_in["access_token"], answer.json()["data"]["access_token"])
    assert [me(b, t) for t in access_tokens] == [200, 200]
    replay = b.post("/api/v1/auth/refresh", json={"refresh_token": first})  # the stolen copy
    assert replay.status_code == 401, replay.text
    assert replay.json()["code"] == "UNAUTHENTICATED"
    assert "x-revoked-session" not in replay.headers  # the backend's trailer stays inside
    # The legitimate holder's newer token died with its family ...
    assert a.post("/api/v1/auth/refresh", json={"refresh_token": second}).status_code == 401
    # ... and so did every access token of the family, on both instances, at once.
    for client in (a, b):
        assert [me(client, t) for t in access_tokens] == [401, 401]


# -- one worker's RevocationList, in this process ---------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 20))


async def wait_for(condition, timeout: float = 5) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


class CountingValkey:
    """Counts EXISTS calls a RevocationList makes on its request-path client; delegates the rest."""

    def __init__(self, inner) -> None:
        self.inner, self.exists_calls = inner, 0

    async def exists(self, *keys):
        self.exists_calls += 1
        return await self.inner.exists(*keys)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def connect(stack):
    v = stack.stack.valkey
    prefix = f"test:{uuid.uuid4().hex[:8]}:"

    def make(**kw) -> RevocationList:
        feed = valkey_asyncio.Valkey(host=v.host, port=v.port, socket_timeout=1)
        return RevocationList(feed, CountingValkey(ValkeyMux(v.host, v.port)), prefix, **kw)

    return make


def test_a_revocation_reaches_every_list_through_the_feed(connect):
    async def scenario():
        one, two = connect(), connect()
        one.start(), two.start()
        try:
            await wait_for(lambda: one.synced and two.synced)
            await one.revoke("jti-1", time.time() + 60)
            took = await wait_for(lambda: "jti-1" in two._local, timeout=1)
            assert await two.is_revoked("jti-1")
            assert not await two.is_revoked("jti-2")
            assert two.requests.exists_calls == 0  # synced: answered from memory
            return took
        finally:
            await one.close(), await two.close()

    assert run(scenario()) < 0.5


def test_without_a_synced_feed_every_check_asks_valkey(connect):
    async def scenario():
        revocations = connect()  # never started: not subscribed
        await revocations.valkey.set(revocations.prefix + "elsewhere", "9999999999")
        assert await revocations.is_revoked("elsewhere")
        assert not await revocations.is_revoked("nobody")
        assert revocations.requests.exists_calls == 2

    run(scenario())


def test_the_fallback_serves_many_concurrent_checks_without_a_pool(connect):
    """Unsynced, every check asks Valkey, on the request path's multiplexed client: 200 at once
    all answer (valkey-py's pool, 10 connections and a 1 s wait, refused such bursts)."""

    async def scenario():
        revocations = connect()  # never started: not subscribed
        await revocations.valkey.set(revocations.prefix + "gone", "9999999999")
        answers = await asyncio.gather(*(revocations.is_revoked("gone" if i % 2 else f"fine-{i}")
                                         for i in range(200)))
        return answers, revocations.requests.exists_calls, revocations.unchecked

    answers, calls, unchecked = run(scenario())
    assert answers == [bool(i % 2) for i in range(200)]
    assert calls == 200 and unchecked == 0


def test_a_lost_feed_resubscribes_and_reloads_what_it_missed(connect, store):
    async def scenario():
        revocations = connect(heartbeat=0.5)
        revocations.start()
        try:
            await wait_for(lambda: revocations.synced)
            killed = store.client_kill_filter(_type="pubsub")
            # Revoked while the feed is down, without a message: only the reload can find it.
            store.set(revocations.prefix + "missed", repr(time.time() + 60), ex=60)
            await wait_for(lambda: revocations.synced and "missed" in revocations._local)
            assert await revocations.is_revoked("missed")
            return killed
        finally:
            await revocations.close()

    assert run(scenario()) >= 1


def test_the_local_map_forgets_expired_entries_and_is_capped(connect):
    async def scenario():
        clock = Clock()
        revocations = connect(max_local=3, clock=clock)
        revocations._subscribed = True  # as if the feed were synced
        for i in range(3):
            revocations._remember(f"jti-{i}", clock.now + 10 * (i + 1))
        assert len(revocations) == 3 and revocations.synced
        revocations._remember("one-too-many", clock.now + 100)
        assert "one-too-many" not in revocations._local
        assert not revocations.synced  # incomplete: back to asking Valkey
        assert not await revocations.is_revoked("one-too-many")
        assert revocations.requests.exists_calls == 1
        clock.now += 25  # jti-0 and jti-1 expired
        revocations._forget_expired()
        assert sorted(revocations._local) == ["jti-2"]
        assert len(revocations._expiries) == 1
        await revocations._reload()  # a reload that fits makes the map complete again
        assert revocations.synced

    run(scenario())
