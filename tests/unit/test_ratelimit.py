"""GCRA: the pure step, the per-worker fallback, and the Lua script on a real valkey-server."""

from __future__ import annotations

import asyncio
import itertools

import pytest
import valkey.asyncio as valkey_asyncio

from emulator.valkey import EmbeddedValkey
from runtime.security.ratelimit import SCRIPT, LocalLimiter, Policy, RateLimiter, gcra, headers
from runtime.valkey_mux import ValkeyMux

TEN_PER_MINUTE = Policy("t", 10, 60.0, "ip")
TWO_PER_HOUR = Policy("h", 2, 3600.0, "ip")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_gcra_admits_a_burst_of_limit_then_spaces_requests():
    tat, now, results = None, 100.0, []
    for _ in range(11):
        allowed, tat_after, remaining, reset, retry = gcra(tat, now, 6.0, 60.0)
        results.append((allowed, remaining))
        if allowed:
            tat = tat_after
    assert results == [(True, r) for r in range(9, -1, -1)] + [(False, 0)]
    assert retry == pytest.approx(6.0)  # the next slot opens one interval later
    assert reset == pytest.approx(60.0)  # the whole budget is back after the window
    assert gcra(tat, now + 6.0, 6.0, 60.0)[0] is True


def test_local_limiter_refuses_without_consuming_and_recovers():
    clock = Clock()
    local = LocalLimiter(clock)
    rules = [(TEN_PER_MINUTE, "k")]
    assert [local.check(rules).allowed for _ in range(12)] == [True] * 10 + [False] * 2
    clock.now += 6.0
    assert local.check(rules).allowed and not local.check(rules).allowed


def test_local_limiter_needs_every_policy_and_charges_none_on_refusal():
    local = LocalLimiter(Clock())
    both = [(TEN_PER_MINUTE, "wide"), (TWO_PER_HOUR, "narrow")]
    assert [local.check(both).allowed for _ in range(3)] == [True, True, False]
    # The refused third request did not spend the ten-per-minute budget: 8 are left.
    decision = local.check([(TEN_PER_MINUTE, "wide")])
    assert decision.allowed and decision.outcomes[0].remaining == 7


def test_headers_report_the_tightest_policy_and_retry_after_on_refusal():
    local = LocalLimiter(Clock())
    both = [(TEN_PER_MINUTE, "a"), (TWO_PER_HOUR, "b")]
    first = headers(local.check(both))
    assert first == {"RateLimit-Limit": "2", "RateLimit-Remaining": "1", "RateLimit-Reset": "1800"}
    local.check(both)
    refused = headers(local.check(both))
    assert refused["RateLimit-Remaining"] == "0" and refused["RateLimit-Limit"] == "2"
    assert refused["Retry-After"] == "1800"


# ------------------------------------------------------------------ the script in Valkey


@pytest.fixture(scope="module")
def server():
    with EmbeddedValkey() as running:
        yield running


_names = itertools.count()


def run(server, check):
    """Fresh clients per test: they belong to the event loop asyncio.run creates. The limiter
    runs on the request path's client; valkey-py looks at the keys it leaves."""

    async def go():
        client, mux = valkey_asyncio.Valkey(host=server.host, port=server.port), ValkeyMux(server.host, server.port)
        try:
            return await check(client, RateLimiter(mux), f"test:{next(_names)}:")
        finally:
            await mux.aclose()
            await client.aclose()

    return asyncio.run(go())


def test_script_counts_exactly_and_expires_its_key(server):
    async def check(client, limiter, prefix):
        rules = [(TEN_PER_MINUTE, prefix + "k")]
        decisions = [await limiter.check(rules) for _ in range(12)]
        return decisions, await client.pttl(prefix + "k")

    decisions, pttl = run(server, check)
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 2
    assert [d.outcomes[0].remaining for d in decisions[:10]] == list(range(9, -1, -1))
    refused = decisions[-1].outcomes[0]
    assert 5.9 < refused.retry_after <= 6.0
    assert 59_000 < pttl <= 60_000  # the key lives as long as the budget is spent, no longer


def test_script_is_all_or_nothing_across_policies(server):
    async def check(client, limiter, prefix):
        both = [(TEN_PER_MINUTE, prefix + "wide"), (TWO_PER_HOUR, prefix + "narrow")]
        allowed = [(await limiter.check(both)).allowed for _ in range(4)]
        after = await limiter.check([(TEN_PER_MINUTE, prefix + "wide")])
        return allowed, after

    allowed, after = run(server, check)
    assert allowed == [True, True, False, False]
    assert after.outcomes[0].remaining == 7  # refusals charged nothing to the wide policy


def test_a_look_without_commit_counts_nothing_in_valkey_or_locally(server):
    async def check(client, limiter, prefix):
        rules = [(TWO_PER_HOUR, prefix + "peek")]
        looks = [(await limiter.check(rules, commit=False)).allowed for _ in range(5)]
        counted = [(await limiter.check(rules)).allowed for _ in range(3)]
        last_look = await limiter.check(rules, commit=False)
        local = LocalLimiter()
        local_looks = [local.check(rules, commit=False).allowed for _ in range(5)]
        local_counted = [local.check(rules).allowed for _ in range(3)]
        return looks, counted, last_look.allowed, local_looks, local_counted

    looks, counted, last_look, local_looks, local_counted = run(server, check)
    assert looks == [True] * 5 and local_looks == [True] * 5
    assert counted == [True, True, False] and local_counted == [True, True, False]
    assert last_look is False


def test_two_clients_share_one_budget(server):
    async def check(client, limiter, prefix):
        other = ValkeyMux(server.host, server.port)
        try:
            limiters = [limiter, RateLimiter(other)]
            rules = [(TEN_PER_MINUTE, prefix + "shared")]
            return [(await limiters[i % 2].check(rules)).allowed for i in range(13)]
        finally:
            await other.aclose()

    assert run(server, check) == [True] * 10 + [False] * 3


def test_script_and_python_agree_on_the_same_sequence(server):
    """SCRIPT mirrors gcra(); a small window lets the budget refill during the test."""
    policy = Policy("fast", 5, 5.0, "ip")  # a slot per second: 7 checks fit in one on a busy machine

    async def check(client, limiter, prefix):
        outcomes = []
        for _ in range(7):
            outcomes.append((await limiter.check([(policy, prefix + "f")])).allowed)
        refused = await limiter.check([(policy, prefix + "f")])
        await asyncio.sleep(refused.outcomes[0].retry_after)  # the script's own Retry-After
        outcomes.append((await limiter.check([(policy, prefix + "f")])).allowed)
        return outcomes

    assert run(server, check) == [True] * 5 + [False, False, True]
    assert "TIME" in SCRIPT  # the server's clock: instances with skewed clocks still agree


def test_valkey_down_falls_back_to_the_local_limiter_and_says_so(server):
    async def check(client, limiter, prefix):
        dead = ValkeyMux("127.0.0.1", 1, timeout=0.5)
        try:
            fallback = RateLimiter(dead)
            rules = [(TWO_PER_HOUR, prefix + "down")]
            allowed = [(await fallback.check(rules)).allowed for _ in range(3)]
            return allowed, fallback.shared, limiter.shared
        finally:
            await dead.aclose()

    allowed, shared_when_down, shared_when_up = run(server, check)
    assert allowed == [True, True, False]
    assert shared_when_down is False and shared_when_up is True


def test_the_largest_policy_configuration_allows_still_counts_on_the_script(server):
    # 60,000,000 a minute is one request per microsecond, the finest the script counts
    # (configuration refuses more); Remaining stays a real count, never a huge negative.
    fastest = Policy("fast", 60_000_000, 60.0, "ip")

    async def check(client, limiter, prefix):
        return [await limiter.check([(fastest, prefix + "k")]) for _ in range(3)]

    decisions = run(server, check)
    assert all(d.allowed for d in decisions)
    assert all(0 <= d.outcomes[0].remaining < 60_000_000 for d in decisions)
    assert 0 <= int(headers(decisions[-1])["RateLimit-Remaining"]) < 60_000_000


def test_a_policy_built_in_code_never_rounds_its_interval_to_zero():
    # What configuration refuses (1e9 a minute) may still be built in code: the script then
    # counts one microsecond per request instead of dividing by zero.
    policy = Policy("huge", 1_000_000_000, 60.0, "ip")
    interval_us, window_us = policy.script_args
    assert interval_us == 1 and window_us == 60_000_000
