"""The near cache: bounds, expiry, scopes, and invalidation pushed by a real valkey-server."""

from __future__ import annotations

import asyncio

import pytest
import valkey

from emulator.valkey import EmbeddedValkey
from runtime.near_cache import _ABSENT, NearCache
from runtime.valkey_mux import Push, Tracker, ValkeyMux, parse


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def live(max_entries: int = 100, max_bytes: int = 10_000, clock=None) -> NearCache:
    near = NearCache("p:cachever:", max_entries, max_bytes, clock=clock or Clock())
    near.tracking(True)
    return near


def test_least_recently_used_leaves_first_when_entries_are_full():
    near = live(max_entries=2)
    for key in ("a", "b"):
        near.put(key, "s", key.upper(), 10, 60, near.generation("s"))
    assert near.get("a") == "A"  # a is now the most recently used
    near.put("c", "s", "C", 10, 60, near.generation("s"))
    assert (near.get("a"), near.get("b"), near.get("c")) == ("A", _ABSENT, "C")


def test_bytes_are_bounded_too_and_an_oversized_entry_is_not_kept():
    near = live(max_bytes=100)
    near.put("a", "s", "A", 60, 60, near.generation("s"))
    near.put("b", "s", "B", 60, 60, near.generation("s"))  # 120 bytes: a leaves
    assert near.get("a") is _ABSENT and near.get("b") == "B" and near.bytes == 60
    near.put("huge", "s", "H", 101, 60, near.generation("s"))
    assert near.get("huge") is _ABSENT and near.bytes == 60


def test_an_entry_expires_with_the_ttl_it_was_given():
    clock = Clock()
    near = live(clock=clock)
    near.put("a", "s", "A", 1, 2.0, near.generation("s"))
    clock.now += 1.9
    assert near.get("a") == "A"
    clock.now += 0.2
    assert near.get("a") is _ABSENT and len(near) == 0


def test_a_write_drops_its_scope_only():
    near = live()
    near.put("a", "crm:org:1", "A", 1, 60, near.generation("crm:org:1"))
    near.put("b", "crm:org:2", "B", 1, 60, near.generation("crm:org:2"))
    near.invalidated([b"p:cachever:crm:org:1", b"p:cache:something:else"])
    assert near.get("a") is _ABSENT and near.get("b") == "B"


def test_a_read_under_way_when_its_scope_is_invalidated_is_not_kept():
    near = live()
    before = near.generation("s")
    near.invalidated([b"p:cachever:s"])
    near.put("a", "s", "stale", 1, 60, before)
    assert near.get("a") is _ABSENT


def test_blind_means_empty_and_bypassed_until_tracking_is_back():
    near = live()
    near.put("a", "s", "A", 1, 60, near.generation("s"))
    near.tracking(False)
    assert near.get("a") is _ABSENT
    near.put("b", "s", "B", 1, 60, near.generation("s"))  # nothing is kept while blind
    near.tracking(True)
    assert len(near) == 0 and near.get("b") is _ABSENT


def test_a_flush_of_everything_empties_it():
    near = live()
    near.put("a", "s", "A", 1, 60, near.generation("s"))
    near.invalidated(None)
    assert len(near) == 0


def test_resp3_replies_parse():
    assert parse(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n", 0) == (Push([b"invalidate", [b"key"]]), 34)
    assert type(parse(b">2\r\n$10\r\ninvalidate\r\n_\r\n", 0)[0]) is Push
    assert parse(b"%1\r\n+a\r\n:1\r\n", 0)[0] == [b"a", 1]
    assert parse(b"#t\r\n", 0)[0] is True and parse(b",1.5\r\n", 0)[0] == 1.5
    assert parse(b"=8\r\ntxt:abcd\r\n", 0)[0] == b"abcd"


@pytest.fixture(scope="module")
def server():
    with EmbeddedValkey() as running:
        yield running


def test_valkey_pushes_changes_of_tracked_keys_and_a_dropped_connection_is_noticed(server):
    events: list = []

    async def go():
        mux = ValkeyMux(server.host, server.port)
        tracker = Tracker(mux, ["t:cachever:"], lambda keys: events.append(keys),
                          lambda up: events.append("up" if up else "down"), retry_interval=0.05)
        tracker.start()
        other = valkey.asyncio.Valkey(host=server.host, port=server.port)
        try:
            await until(lambda: "up" in events)
            await other.incr("t:cachever:crm:org:1")
            await other.set("t:cache:entry", "not tracked")
            await until(lambda: [b"t:cachever:crm:org:1"] in events)
            await other.client_kill_filter(_type="normal", skipme=True)  # drops the tracking connection
            await until(lambda: events.count("up") == 2)
            await other.incr("t:cachever:crm:org:2")
            await until(lambda: [b"t:cachever:crm:org:2"] in events)
        finally:
            await tracker.close()
            await other.aclose()
            await mux.aclose()

    asyncio.run(go())
    assert events[0] == "up" and "down" in events
    assert events.index("down") < len(events) - 2  # down, then up again, then the second push
    assert [b"t:cache:entry"] not in events


async def until(condition, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def test_generation_counters_are_bounded(monkeypatch):
    monkeypatch.setattr("runtime.near_cache.MAX_SCOPES_TRACKED", 3)
    near = live()
    near.put("a", "s0", "A", 1, 60, near.generation("s0"))
    for i in range(1, 4):
        near.drop_scope(f"s{i}")
    assert len(near) == 1 and len(near._generations) == 3
    near.drop_scope("s4")  # one scope too many: everything starts over
    assert len(near) == 0 and len(near._generations) == 0
