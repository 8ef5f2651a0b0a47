"""Cache-aside in Valkey for GET routes that declare `cache="<policy>"`.

- Keys are scoped by organization (or by user, for per-user policies), so one tenant can
  never be served another's entry.
- Invalidation is by version: a write bumps `(policy, organization)`'s version and readers
  only look under the current version, so a reader that loaded stale data just before a
  write can never publish it after the write (the race plain DEL-on-write has). Entries of
  old versions simply expire with their TTL; nothing grows without bound.
- One read is one round trip: a script returns the version, the entry and, on a miss,
  whether this caller won the fill lock.
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


class Cache:
    def __init__(self, valkey: "ValkeyMux", prefix: str, policies: Mapping[str, Any], *, lock_ttl: float = 5.0) -> None:
        self.valkey = valkey
        self.prefix = prefix + "cache:"
        self.policies = policies
        self.lock_ttl = lock_ttl
        self._read = valkey.register_script(_READ)
        self._inflight: dict[str, asyncio.Future] = {}
        self.stats: Counter[str] = Counter()  # "<policy>:hit|miss|bypass"

    def _scope(self, ctx: "Context", policy: str) -> str:
        principal = ctx.principal
        if self.policies[policy].scope == "user":
            return f"user:{principal.user_id}"
        return f"org:{principal.organization_id}"

    def _version_key(self, policy: str, scope: str) -> str:
        return f"{self.prefix}{policy}:{scope}:version"

    async def fetch(
        self, ctx: "Context", policy: str, resource: str, load: Callable[[], Awaitable[Any]]
    ) -> tuple[Any, bool]:
        """(data, hit) for `resource` (path and query) under `policy`."""
        scope = self._scope(ctx, policy)
        digest = hashlib.blake2b(resource.encode(), digest_size=16).hexdigest()
        local_key = f"{policy}:{scope}:{digest}"
        waiting = self._inflight.get(local_key)
        if waiting is not None:  # another request of this worker is loading it
            data = await asyncio.shield(waiting)
            self.stats[f"{policy}:hit"] += 1
            return data, True
        future = asyncio.get_running_loop().create_future()
        self._inflight[local_key] = future
        try:
            data, hit = await self._fetch(policy, scope, digest, load)
            future.set_result(data)
            return data, hit
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            del self._inflight[local_key]

    async def _fetch(self, policy: str, scope: str, digest: str, load) -> tuple[Any, bool]:
        entry_prefix = f"{self.prefix}{policy}:{scope}:{digest}:v"
        try:
            version, entry, locked = await self._read(
                keys=[self._version_key(policy, scope), entry_prefix], args=[_LOCK, int(self.lock_ttl * 1000)]
            )
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
