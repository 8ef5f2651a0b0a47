"""The JWKS over a gateway's life: caching, rotation, floods of unknown kids, the host down.

A stack of its own (rotating keys or stopping the JWKS host must not disturb other modules'
gateways) and a gateway with short intervals, so the test can watch them pass. Fetches are
counted by the JWKS server itself.
"""

from __future__ import annotations

import random
import string
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from click.testing import CliRunner

from emulator.cli import main
from emulator.processes import stop
from tests.conftest import StackThread
from tests.support import granian_env, start_gateway

ME = "/api/v1/auth/me"
ADMIN = "admin@acme.example"
CACHE_DURATION = 2.0
REFETCH_INTERVAL = 1.0



@pytest.fixture(scope="module")
def gateway_url(own_stack):
    # No scheduled poll here: these tests count the fetches of the on-demand paths
    # (tests/integration/test_key_withdrawal.py covers the poll).
    env = granian_env(own_stack.environment(), ERP_JWT_CACHE_DURATION=f"{CACHE_DURATION}s",
                      ERP_JWT_UNKNOWN_KID_REFETCH_INTERVAL=f"{REFETCH_INTERVAL}s", ERP_JWT_JWKS_POLL_INTERVAL="0s")
    process, url = start_gateway(env)
    yield url
    stop(process)


@pytest.fixture(scope="module")
def client(gateway_url):
    with httpx.Client(base_url=gateway_url, timeout=10) as c:
        yield c


def fetches(stack: StackThread) -> int:
    return stack.call(lambda: stack.stack.backends.jwks.jwks_fetches)


def mint(stack: StackThread, **kw) -> str:
    """A fresh token (never seen by the gateway, so not in its verified-token cache)."""
    user_id = stack.call(stack.auth.user_by_email, ADMIN).id
    return stack.call(stack.auth.mint_access_token, user_id, **kw)


def status(client: httpx.Client, token: str) -> int:
    return client.get(ME, headers={"Authorization": f"Bearer {token}"}).status_code


def random_kid() -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=43))


def test_keys_are_cached_not_fetched_per_request(own_stack, client):
    assert status(client, mint(own_stack)) == 200
    before = fetches(own_stack)
    for _ in range(20):
        assert status(client, mint(own_stack)) == 200
    assert fetches(own_stack) - before <= 1  # at most the cache_duration refresh, never 20


def test_keys_are_refreshed_after_cache_duration(own_stack, client):
    assert status(client, mint(own_stack)) == 200
    time.sleep(CACHE_DURATION + 0.1)
    before = fetches(own_stack)
    assert status(client, mint(own_stack)) == 200  # answered from the stale key at once...
    deadline = time.monotonic() + 2
    while fetches(own_stack) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fetches(own_stack) == before + 1  # ...and refreshed once in the background


def test_rotation_needs_no_restart_and_retired_key_tokens_keep_working(own_stack, client):
    signed_by_old_key = mint(own_stack)  # minted before rotation, first presented after it
    old_kid = own_stack.call(lambda: own_stack.auth.keys.current.kid)
    rotated = CliRunner().invoke(main, ["rotate-key"], env=own_stack.environment())  # `gw rotate-key`
    assert rotated.exit_code == 0, rotated.output
    new_kid = rotated.output.strip()
    assert new_kid == own_stack.call(lambda: own_stack.auth.keys.current.kid) != old_kid
    time.sleep(REFETCH_INTERVAL + 0.1)  # whatever fetched last, the gate is open again
    before = fetches(own_stack)
    signed_by_new_key = mint(own_stack)
    assert status(client, signed_by_new_key) == 200
    assert fetches(own_stack) == before + 1  # the unknown kid cost exactly one refetch
    assert status(client, signed_by_old_key) == 200  # the retired key is still published


def test_random_kid_flood_is_bounded_by_the_refetch_interval(own_stack, client):
    time.sleep(REFETCH_INTERVAL + 0.1)
    tokens = [mint(own_stack, headers={"kid": random_kid()}) for _ in range(200)]
    valid = mint(own_stack)
    before, started = fetches(own_stack), time.monotonic()

    def attack(chunk: list[str]) -> list[int]:
        codes = []
        with httpx.Client(base_url=client.base_url, timeout=10) as c:
            for token in chunk:
                codes.append(status(c, token))
                time.sleep(0.05)  # spread over a few seconds: past the interval and cache_duration
        return codes

    with ThreadPoolExecutor(4) as pool:
        flood = pool.map(attack, [tokens[i::4] for i in range(4)])
        assert status(client, valid) == 200  # real users are unaffected meanwhile
        codes = [c for chunk in flood for c in chunk]
    elapsed = time.monotonic() - started
    spent = fetches(own_stack) - before
    assert codes == [401] * 200
    assert elapsed > 2 * REFETCH_INTERVAL
    assert 1 <= spent <= 1 + elapsed / REFETCH_INTERVAL, (spent, elapsed)
    print(f"\n200 random-kid tokens over {elapsed:.1f} s: {spent} JWKS fetches")


def test_known_keys_keep_working_while_the_jwks_host_is_down(own_stack, client):
    jwks = own_stack.stack.backends.jwks
    fresh = [mint(own_stack) for _ in range(3)]
    own_stack.run(jwks.stop())
    try:
        time.sleep(CACHE_DURATION + REFETCH_INTERVAL)  # keys stale, refreshes failing
        for token in fresh:  # that none waits for the failing refresh: test_jwks_cache.py
            assert status(client, token) == 200
        assert status(client, mint(own_stack, headers={"kid": random_kid()})) == 401
    finally:
        own_stack.run(jwks.resume())
    # Back up on the same port: a rotation is picked up again.
    own_stack.call(own_stack.auth.rotate_signing_key)
    time.sleep(REFETCH_INTERVAL + 0.1)
    assert status(client, mint(own_stack)) == 200


def test_a_gateway_started_before_the_jwks_host_recovers_without_waiting_an_interval(own_stack):
    jwks = own_stack.stack.backends.jwks
    own_stack.run(jwks.stop())
    process = None
    try:
        # The default 30 s refetch interval: recovery must not wait for it.
        process, url = start_gateway(granian_env(own_stack.environment(), ERP_JWT_JWKS_POLL_INTERVAL="0s"))
        token = mint(own_stack)
        with httpx.Client(base_url=url, timeout=10) as c:
            assert status(c, token) == 401  # no keys yet: nothing can be verified
            before = fetches(own_stack)
            for _ in range(30):
                assert status(c, token) == 401
            own_stack.run(jwks.resume())
            # Polled for half the 30 s interval: recovering at all within it is the point.
            recovered, started = False, time.monotonic()
            while not recovered and time.monotonic() - started < 15:
                recovered = status(c, token) == 200
                time.sleep(0.05)
        assert recovered
        assert fetches(own_stack) - before == 1  # the host was down: no fetch counted until now
    finally:
        if not jwks.running:
            own_stack.run(jwks.resume())
        stop(process)
