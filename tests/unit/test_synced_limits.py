"""Synced rate limits: local allowances reconciled with a real valkey-server in the background."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from emulator.valkey import EmbeddedValkey
from runtime.config import load_config
from runtime.security.ratelimit import Policy, RateLimiter, headers
from runtime.security.route_limits import _policy
from runtime.security.synced_limits import SyncedLimiter, allowance
from runtime.valkey_mux import ValkeyMux

_names = itertools.count()


@pytest.fixture(scope="module")
def server():
    with EmbeddedValkey() as running:
        yield running


def run(server, check, workers: int = 1, interval: float = 0.05):
    """`workers` synced limiters (as many workers would have) on one Valkey, one event loop."""

    async def go():
        muxes = [ValkeyMux(server.host, server.port) for _ in range(workers)]
        limiters = [RateLimiter(m, synced=SyncedLimiter(m, interval)) for m in muxes]
        try:
            return await check(limiters, f"test:{next(_names)}:")
        finally:
            for limiter, mux in zip(limiters, muxes):
                await limiter.synced.aclose()
                await mux.aclose()

    return asyncio.run(go())


def test_allowance_keeps_the_fleet_within_ten_percent_or_stays_exact():
    assert allowance(600, 4) == 15  # 4 workers x 15 = 60 = 10% of 600
    assert allowance(1200, 4) == 30
    assert allowance(60, 4) == 0  # 1.5 per worker: every request counts, exact
    assert allowance(10, 1) == 0  # login-sized limits stay exact


def test_default_policies_user_synced_anonymous_and_login_exact():
    rl = load_config(env={}).rate_limits
    assert rl.sync_interval == pytest.approx(0.1)
    assert _policy("user", rl).allowance == 15
    assert _policy("anonymous", rl).allowance == 0
    assert _policy("login", rl).allowance == 0



def _with_user_mode(tmp_path, mode: str):
    path = tmp_path / "gateway.yaml"
    path.write_text("rate_limits:\n  policies:\n"
                    f"    user: {{limit: 600, window: 1m, key: user, mode: {mode}}}\n"
                    "    anonymous: {limit: 60, window: 1m, key: ip}\n")
    return load_config(path, env={})


def test_mode_exact_keeps_the_per_request_script(tmp_path):
    assert _policy("user", _with_user_mode(tmp_path, "exact").rate_limits).allowance == 0


def test_a_bad_mode_is_refused_naming_the_key(tmp_path):
    with pytest.raises(Exception) as caught:
        _with_user_mode(tmp_path, "sometimes")
    assert "mode" in str(caught.value) and "exact" in str(caught.value)


def test_one_worker_admits_exactly_the_limit_with_one_round_trip_per_allowance(server):
    policy = Policy("u", 100, 60.0, "user", allowance=10)

    async def check(limiters, prefix):
        (limiter,) = limiters
        rules = [(policy, prefix + "k")]
        admitted = [(await limiter.check(rules)).allowed for _ in range(120)]
        return admitted, limiter.synced.syncs

    admitted, syncs = run(server, check, interval=60)  # no background sync: only forced ones
    assert admitted == [True] * 100 + [False] * 20
    assert syncs <= 100 // 10 + 2  # a sync per spent allowance, not a round trip per request


def test_four_workers_overshoot_by_at_most_their_allowances(server):
    policy = Policy("u", 200, 60.0, "user", allowance=5)

    async def check(limiters, prefix):
        rules = [(policy, prefix + "k")]
        admitted = 0
        for _ in range(100):  # interleaved, as concurrent workers would be
            for limiter in limiters:
                admitted += (await limiter.check(rules)).allowed
        return admitted

    admitted = run(server, check, workers=4, interval=60)
    assert 200 <= admitted <= 200 + 4 * 5


def test_the_background_sync_shares_counts_between_workers(server):
    policy = Policy("u", 100, 60.0, "user", allowance=50)

    async def check(limiters, prefix):
        a, b = limiters
        rules = [(policy, prefix + "k")]
        for _ in range(30):
            assert (await a.check(rules)).allowed
        await asyncio.sleep(0.3)  # a few sync intervals: a pushed its 30
        decision = await b.check(rules)
        return decision.outcomes[0].remaining

    remaining = run(server, check, workers=2, interval=0.05)
    assert remaining == 100 - 31  # b sees a's 30 and its own one


def test_headers_are_truthful_and_a_refusal_says_when_to_retry(server):
    policy = Policy("u", 20, 60.0, "user", allowance=4)

    async def check(limiters, prefix):
        (limiter,) = limiters
        rules = [(policy, prefix + "k")]
        first = headers(await limiter.check(rules))
        for _ in range(19):
            await limiter.check(rules)
        return first, headers(await limiter.check(rules))

    first, refused = run(server, check)
    assert first["RateLimit-Limit"] == "20" and first["RateLimit-Remaining"] == "19"
    assert refused["RateLimit-Remaining"] == "0" and int(refused["Retry-After"]) >= 1


def test_a_check_with_an_exact_policy_refused_spends_nothing_of_the_synced_one(server):
    synced = Policy("u", 100, 60.0, "user", allowance=10)
    exact = Policy("x", 2, 60.0, "ip")

    async def check(limiters, prefix):
        (limiter,) = limiters
        both = [(synced, prefix + "u"), (exact, prefix + "x")]
        outcomes = [(await limiter.check(both)).allowed for _ in range(4)]
        alone = await limiter.check([(synced, prefix + "u")])
        return outcomes, alone.outcomes[0].remaining

    outcomes, remaining = run(server, check)
    assert outcomes == [True, True, False, False]
    assert remaining == 100 - 3  # two admitted with the exact one, then this one


def test_valkey_down_counts_locally_and_recovers(server):
    policy = Policy("u", 10, 60.0, "user", allowance=2)

    async def check(limiters, prefix):
        (limiter,) = limiters
        mux = ValkeyMux(server.host, 1)  # nothing listens on port 1
        limiter = RateLimiter(mux, synced=SyncedLimiter(mux, 60))
        rules = [(policy, prefix + "k")]
        try:
            admitted = [(await limiter.check(rules)).allowed for _ in range(12)]
            return admitted, limiter.synced.shared
        finally:
            await limiter.synced.aclose()
            await mux.aclose()

    admitted, shared = run(server, check)
    assert admitted == [True] * 10 + [False] * 2  # the same algorithm, per worker
    assert shared is False


def test_one_background_round_pushes_every_due_key_in_one_call_and_forgets_idle_ones(server):
    policy = Policy("u", 100, 0.05, "user", allowance=10)  # a 50 ms window: idle keys are whole again soon

    async def check(limiters, prefix):
        (limiter,) = limiters
        synced = limiter.synced
        for user in range(20):
            await limiter.check([(policy, f"{prefix}{user}")])
        before = synced.syncs
        await synced.sync_all()
        pushed = synced.syncs - before
        await asyncio.sleep(0.1)
        await synced.sync_all()  # untouched since: forgotten on this round or the next
        await synced.sync_all()
        return pushed, len(synced.keys)

    pushed, left = run(server, check, interval=60)
    assert pushed == 1  # 20 keys, one script call
    assert left == 0
