"""A near cache per worker in front of the Valkey response cache (runtime.cache).

A cached read that finds its entry here costs no round trip. It stays correct because Valkey
tells every worker of every instance when a scope's version key changes (a write through any
instance INCRs it): `runtime.valkey_mux.Tracker` keeps a RESP3 connection with
`CLIENT TRACKING on BCAST PREFIX <version keys>`, and each push drops every entry of that
scope here. So a write stops being served here as soon as the push arrives (on loopback, well
under a millisecond).

- Bounded by entries and by bytes (the size of the entry's JSON), least recently used first out.
- An entry lives no longer than its Valkey entry: its expiry is the PTTL Valkey reported.
- Scoped exactly like the Valkey keys: the local key is policy, scope (organization or user)
  and the request's resource.
- A read that was under way when an invalidation of its scope arrived does not store what it
  read (it may predate the write): each scope has a generation, taken before the read.
- While the tracking connection is down, nothing here may be trusted (changes are not being
  pushed): the cache is flushed and bypassed until tracking is back, and /ready says so.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

_ABSENT = object()
MAX_SCOPES_TRACKED = 100_000  # scopes with a generation counter before a flush starts over


class NearCache:
    def __init__(self, version_prefix: str, max_entries: int, max_bytes: int, clock=time.monotonic) -> None:
        self.version_prefix = version_prefix.encode()
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self.live = False  # True while invalidations are being received
        self.bytes = 0
        # local key -> (data, expires at, size, scope)
        self._entries: OrderedDict[str, tuple[Any, float, int, str]] = OrderedDict()
        self._scopes: dict[str, set[str]] = {}  # scope -> local keys held
        self._generations: dict[str, int] = {}  # scope -> invalidations seen
        self._flushes = 0
        self.stats = {"hit": 0, "invalidated": 0, "evicted": 0, "flushed": 0}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Any:
        """The data, or _ABSENT (missing, expired, or blind)."""
        entry = self._entries.get(key)
        if entry is None or not self.live:
            return _ABSENT
        if entry[1] <= self.clock():
            self._remove(key)
            return _ABSENT
        self._entries.move_to_end(key)
        self.stats["hit"] += 1
        return entry[0]

    def generation(self, scope: str) -> tuple[int, int]:
        """Taken before reading from Valkey; `put` refuses data read across an invalidation."""
        return self._flushes, self._generations.get(scope, 0)

    def put(self, key: str, scope: str, data: Any, size: int, ttl: float, generation: tuple[int, int]) -> None:
        if not self.live or ttl <= 0 or size > self.max_bytes or generation != self.generation(scope):
            return
        if key in self._entries:
            self._remove(key)
        self._entries[key] = (data, self.clock() + ttl, size, scope)
        self._scopes.setdefault(scope, set()).add(key)
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))
            self.stats["evicted"] += 1

    def _remove(self, key: str) -> None:
        _, _, size, scope = self._entries.pop(key)
        self.bytes -= size
        keys = self._scopes.get(scope)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._scopes[scope]

    def drop_scope(self, scope: str) -> None:
        """Everything of one scope is stale (a write)."""
        if len(self._generations) >= MAX_SCOPES_TRACKED and scope not in self._generations:
            self.flush()  # one counter per scope ever written would grow without bound
            return
        self._generations[scope] = self._generations.get(scope, 0) + 1
        for key in self._scopes.pop(scope, ()):
            _, _, size, _ = self._entries.pop(key)
            self.bytes -= size
            self.stats["invalidated"] += 1

    def invalidated(self, keys: list | None) -> None:
        """A push from Valkey: these keys changed (None: all of them, e.g. FLUSHALL)."""
        if keys is None:
            self.flush()
            return
        prefix = self.version_prefix
        for key in keys:
            if key.startswith(prefix):
                self.drop_scope(key[len(prefix):].decode(errors="replace").strip("{}"))  # the hash tag's braces

    def flush(self) -> None:
        self._flushes += 1
        self._generations.clear()
        self._entries.clear()
        self._scopes.clear()
        self.bytes = 0
        self.stats["flushed"] += 1

    def tracking(self, live: bool) -> None:
        """The tracking connection came up or went down: either way, start empty."""
        self.flush()
        self.live = live
