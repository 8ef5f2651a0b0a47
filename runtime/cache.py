"""Cache-aside in Valkey for GET routes that declare `cache="<policy>"`.

- Keys are scoped by organization (or by user, for per-user policies), so one tenant can
  never be served another's entry.
- Invalidation is by version: a write bumps `(policy, organization)`'s version and readers
  only look under the current version, so a reader that loaded stale data just before a
  write can never publish it after the write (the race plain DEL-on-write has). Entries of
  old versions simply expire with their TTL; nothing grows without bound.
- One read is one round trip: a script returns the version, the entry and, on a miss,
  whether this caller won the fill lock. The request path sends it together with the
  rate-limit check (`fetch(gate=...)`), so a cached read costs one round trip in all.
- Single flight: one load per key at a time, inside a worker (shared future) and across
  workers and instances (the fill lock; losers poll the entry briefly, then load anyway).
- With Valkey down, requests go to the backends (counted as `bypass`) and /ready says
  degraded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

import orjson
from valkey.exceptions import ValkeyError

if TYPE_CHECKING:
    from runtime.context import Context
    from runtime.valkey_mux import ValkeyMux

log = logging.getLogger("gateway.cache")

# KEYS: version key, entry-key prefix; ARGV: lock suffix, lock ttl ms.
# Returns {version, entry or false, 1 if this caller now holds the fill lock}.
_READ = """
local version = redis.call('GET', KEYS[1]) or '0'
local key = KEYS[2] .. version
local entry = redis.call('GET', key)
if entry then return {version, entry, 0} end
local locked = redis.call('SET', key .. ARGV[1], '1', 'NX', 'PX', ARGV[2])
return {version, false, locked and 1 or 0}
"""

_LOCK = ":fill"
_POLL_INTERVAL = 0.01
_REFUSED = object()  # what a request refused by its gate leaves to those waiting on its read


class Cache:
    def __init__(self, valkey: "ValkeyMux", prefix: str, policies: Mapping[str, Any], *, lock_ttl: float = 5.0) -> None:
        self.valkey = valkey
        self.prefix = prefix + "cache:"
        self.policies = policies
        self.lock_ttl = lock_ttl
        self._read = valkey.register_script(_READ)
        self._read_args = (_LOCK, int(lock_ttl * 1000))
        self._inflight: dict[str, asyncio.Future] = {}
        self.stats: Counter[str] = Counter()  # "<policy>:hit|miss|bypass"

    def _scope(self, ctx: "Context", policy: str) -> str:
        principal = ctx.principal
        assert principal is not None, "cached routes require authentication"  # checked at start-up
        if self.policies[policy].scope == "user":
            return f"user:{principal.user_id}"
        return f"org:{principal.organization_id}"

    def _version_key(self, policy: str, scope: str) -> str:
        return f"{self.prefix}{policy}:{scope}:version"

    async def fetch(
        self, ctx: "Context", policy: str, resource: str, load: Callable[[], Awaitable[Any]],
        gate: Awaitable[None] | None = None,
    ) -> tuple[Any, bool]:
        """(data, hit) for `resource` (path and query) under `policy`.

        `gate` (the rate-limit check) must pass before anything is served, loaded or counted.
        The entry is read meanwhile, so both share one Valkey round trip (the mux writes the
        commands of one loop iteration together); if the gate raises, the read is dropped, a
        fill lock it took is released, and requests of this worker that were waiting for that
        read (whose own gates passed) fetch it themselves.
        """
        scope = self._scope(ctx, policy)
        digest = hashlib.blake2b(resource.encode(), digest_size=16).hexdigest()
        local_key = f"{policy}:{scope}:{digest}"
        entry_prefix = f"{self.prefix}{local_key}:v"
        waiting = self._inflight.get(local_key)
        if waiting is not None:  # another request of this worker is reading or loading it
            if gate is not None:
                await gate
            data = await asyncio.shield(waiting)
            if data is _REFUSED:  # that request's gate refused it: read for ourselves (ours passed)
                return await self.fetch(ctx, policy, resource, load)
            self.stats[f"{policy}:hit"] += 1
            return data, True
        future = asyncio.get_running_loop().create_future()
        self._inflight[local_key] = future
        try:
            read: Awaitable[list] | None = None
            if gate is not None:
                # A task, so that its EVALSHA is queued in the same loop iteration as the gate's.
                read = asyncio.ensure_future(self._read_entry(policy, scope, entry_prefix))
                try:
                    await gate
                except BaseException:
                    await self._drop(read, entry_prefix)
                    future.set_result(_REFUSED)  # not before: no await between it and the del below
                    raise
            data, hit = await self._fetch(policy, scope, entry_prefix, load, read)
            future.set_result(data)
            return data, hit
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            del self._inflight[local_key]

    def _read_entry(self, policy: str, scope: str, entry_prefix: str) -> Awaitable[list]:
        """[version, entry or None, 1 if this caller now holds the fill lock]: one script call."""
        return self._read(keys=[self._version_key(policy, scope), entry_prefix], args=self._read_args)

    async def _drop(self, read: Awaitable[list], entry_prefix: str) -> None:
        """Discard the read of a refused request: nothing is counted, and its fill lock is released."""
        try:
            version, _, locked = await read
        except (ValkeyError, OSError):
            return
        if locked:
            await self._release(entry_prefix + version.decode() + _LOCK)

    async def _fetch(self, policy: str, scope: str, entry_prefix: str, load,
                     read: Awaitable[list] | None) -> tuple[Any, bool]:
        if read is None:
            read = self._read_entry(policy, scope, entry_prefix)
        try:
            version, entry, locked = await read
        except (ValkeyError, OSError) as exc:
            self.stats[f"{policy}:bypass"] += 1
            log.warning("cache unavailable, reading through", extra={"error": str(exc)[:200]})
            return await load(), False
        key = entry_prefix + version.decode()
        if entry is not None:
            self.stats[f"{policy}:hit"] += 1
            return orjson.loads(entry), True
        if not locked:  # another worker or instance is filling it: wait briefly for it
            entry = await self._wait_for(key)
            if entry is not None:
                self.stats[f"{policy}:hit"] += 1
                return orjson.loads(entry), True
        self.stats[f"{policy}:miss"] += 1
        try:
            data = await load()
        except BaseException:
            if locked:  # let the next reader load at once instead of waiting out our lock
                await self._release(key + _LOCK)
            raise
        try:
            await self.valkey.execute_many((
                ("SET", key, orjson.dumps(data), "EX", max(1, int(self.policies[policy].ttl))),
                ("DEL", key + _LOCK),
            ))
        except (ValkeyError, OSError):
            pass  # the answer is still good; the next reader loads again
        return data, False

    async def _release(self, lock: str) -> None:
        try:
            await self.valkey.delete(lock)
        except (ValkeyError, OSError):
            pass  # it expires by itself

    async def _wait_for(self, key: str) -> bytes | None:
        deadline = asyncio.get_running_loop().time() + self.lock_ttl
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(_POLL_INTERVAL)
            try:
                entry, locked = await self.valkey.mget(key, key + _LOCK)
            except (ValkeyError, OSError):
                return None
            if entry is not None or locked is None:
                return entry
        return None

    async def invalidate(self, ctx: "Context", policies: tuple[str, ...]) -> None:
        """After a write: every entry of these policies in the caller's scope is stale."""
        try:
            await self.valkey.execute_many(("INCR", self._version_key(p, self._scope(ctx, p))) for p in policies)
        except (ValkeyError, OSError) as exc:
            # Entries may be served stale until their TTL: say so loudly.
            log.error("cache invalidation failed", extra={"policies": policies, "error": str(exc)[:200]})
