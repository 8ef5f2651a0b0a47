"""Cache-aside in Valkey for GET routes that declare `cache="<policy>"`.

- Keys are scoped by organization (or by user, for per-user policies), so one tenant can
  never be served another's entry.
- Invalidation is by version: a write bumps `(policy, organization)`'s version and readers
  only look under the current version, so a reader that loaded stale data just before a
  write can never publish it after the write (the race plain DEL-on-write has). Entries of
  old versions simply expire with their TTL; nothing grows without bound.
- One read is one round trip: a script returns the version, the entry (and its PTTL) and, on
  a miss, whether this caller won the fill lock.
- Single flight: one load per key at a time, inside a worker (shared future) and across
  workers and instances (the fill lock; losers poll the entry briefly, then load anyway).
- With Valkey down, requests go to the backends (counted as `bypass`) and /ready says
  degraded.
- In front of it all, a near cache per worker (runtime.near_cache), invalidated by Valkey
  itself: a hit there costs no round trip at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

import orjson
from valkey.exceptions import ValkeyError

from runtime.errors import BackendTimeout
from runtime.near_cache import _ABSENT

if TYPE_CHECKING:
    from runtime.context import Context
    from runtime.near_cache import NearCache
    from runtime.valkey_mux import ValkeyMux

log = logging.getLogger("gateway.cache")

# KEYS: version key, entry-key prefix; ARGV: lock suffix, lock ttl ms.
# Returns {version, entry or false, 1 if this caller now holds the fill lock, the entry's PTTL}.
_READ = """
local version = redis.call('GET', KEYS[1]) or '0'
local key = KEYS[2] .. version
local entry = redis.call('GET', key)
if entry then return {version, entry, 0, redis.call('PTTL', key)} end
local locked = redis.call('SET', key .. ARGV[1], '1', 'NX', 'PX', ARGV[2])
return {version, false, locked and 1 or 0}
"""

_LOCK = ":fill"
_POLL_INTERVAL = 0.01
_LEFT = object()  # what a request that left before loading (refused, cancelled) leaves its waiters
_MISS = object()


async def _within(ctx: "Context", waited: "asyncio.Future[Any]") -> Any:
    """`waited`'s result, waiting no longer than this request's own deadline; leaving early
    (timeout or cancellation) never cancels what the others wait for."""
    remaining = ctx.deadline - time.monotonic()
    try:
        return await asyncio.wait_for(asyncio.shield(waited), max(remaining, 0.0))
    except asyncio.TimeoutError:
        if waited.done() and not waited.cancelled() and isinstance(waited.exception(), asyncio.TimeoutError):
            raise  # the shared work's own timeout, not this request's deadline
        raise BackendTimeout("The backend did not answer within this request's time budget") from None


class Cache:
    def __init__(self, valkey: "ValkeyMux", prefix: str, policies: Mapping[str, Any], *, lock_ttl: float = 5.0,
                 near: "NearCache | None" = None) -> None:
        self.valkey = valkey
        self.prefix = prefix + "cache:"
        # Version keys under a prefix of their own: the near cache's tracking watches only them.
        self.version_prefix = prefix + "cachever:"
        self.near = near
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
        # `{policy:scope}` is a hash tag: the read script touches the version key and the
        # entries of one scope together, so in a cluster they must share a slot.
        return f"{self.version_prefix}{{{policy}:{scope}}}"

    def _names(self, ctx: "Context", policy: str, resource: str) -> tuple[str, str, str]:
        """(scope, digest of the resource, the entry's key in the near cache and in-flight map)."""
        scope = self._scope(ctx, policy)
        digest = hashlib.blake2b(resource.encode(), digest_size=16).hexdigest()
        return scope, digest, f"{policy}:{scope}:{digest}"

    def peek(self, ctx: "Context", policy: str, resource: str) -> Any:
        """The near cache's data for `resource` (a hit), or _ABSENT: a read with nothing to
        await, for callers that can answer at once (GraphQL resolvers: graphql-core stays on
        its synchronous path when no field returns an awaitable)."""
        near = self.near
        if near is None or not near.live:
            return _ABSENT
        data = near.get(self._names(ctx, policy, resource)[2])
        if data is not _ABSENT:
            self.stats[f"{policy}:hit"] += 1
        return data

    async def fetch(
        self, ctx: "Context", policy: str, resource: str, load: Callable[[], Awaitable[Any]],
    ) -> tuple[Any, bool]:
        """(data, hit) for `resource` (path and query) under `policy`.

        On a miss the load runs as a task of its own (`load` must not depend on the caller's
        deadline: the pipeline gives it a context with a budget of its own), and every request
        waiting for it, the one that started it included, waits at most until its own deadline.
        So a follower never inherits the starter's cancellation (its client went away) or a
        timeout caused by the starter's shorter deadline.
        """
        scope, digest, local_key = self._names(ctx, policy, resource)
        near, generation = self.near, None
        if near is not None and near.live:
            data = near.get(local_key)
            if data is not _ABSENT:
                self.stats[f"{policy}:hit"] += 1
                return data, True
            generation = near.generation(f"{policy}:{scope}")
        entry_prefix = f"{self.prefix}{{{policy}:{scope}}}:{digest}:v"  # the version key's hash tag
        waiting = self._inflight.get(local_key)
        if waiting is not None:  # another request of this worker is reading or loading it
            data = await _within(ctx, waiting)
            if data is _LEFT:  # it left before loading (refused, cancelled): read for ourselves
                return await self.fetch(ctx, policy, resource, load)
            self.stats[f"{policy}:hit"] += 1
            return data, True
        future = asyncio.get_running_loop().create_future()
        self._inflight[local_key] = future
        try:
            found = await self._lookup(policy, scope, entry_prefix)
        except BaseException:
            self._hand_over(local_key, future, _LEFT)
            raise
        near_key = (local_key, f"{policy}:{scope}", generation) if generation is not None else None
        if found[0] is not _MISS:
            self._hand_over(local_key, future, found[0])
            if near is not None and generation is not None and found[3] > 0:
                near.put(local_key, f"{policy}:{scope}", found[0], found[2], found[3] / 1000, generation)
            return found[0], True
        fill = asyncio.get_running_loop().create_task(self._fill(policy, found[1], found[2], load, near_key))
        fill.add_done_callback(lambda task: self._hand_over(local_key, future, task))
        return await _within(ctx, fill), False

    def _hand_over(self, local_key: str, future: asyncio.Future, outcome: Any) -> None:
        """Give waiters `outcome` (data, _LEFT or the finished fill task); the key is free again."""
        if self._inflight.get(local_key) is future:
            del self._inflight[local_key]
        if future.done():
            return
        if not isinstance(outcome, asyncio.Task):
            future.set_result(outcome)
        elif outcome.cancelled():  # only at shutdown: nobody is left to serve
            future.set_result(_LEFT)
        elif (error := outcome.exception()) is not None:  # the backend's own answer (404, 503...): theirs too
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waited
        else:
            future.set_result(outcome.result())

    def _read_entry(self, policy: str, scope: str, entry_prefix: str) -> Awaitable[list]:
        """[version, entry or None, 1 if this caller now holds the fill lock]: one script call."""
        return self._read(keys=[self._version_key(policy, scope), entry_prefix], args=self._read_args)

    async def _lookup(self, policy: str, scope: str, entry_prefix: str) -> tuple[Any, Any, Any, float]:
        """(data, True, its size, its PTTL) on a hit, else (_MISS, entry key or None when Valkey is
        down, locked, 0); a hit found by waiting for another filler has no PTTL (0: not kept near)."""
        try:
            version, entry, locked, *pttl = await self._read_entry(policy, scope, entry_prefix)
        except (ValkeyError, OSError) as exc:
            self.stats[f"{policy}:bypass"] += 1
            # Not a warning per request: the client's breaker logs when Valkey goes and comes back.
            log.debug("cache unavailable, reading through", extra={"error": str(exc)[:200]})
            return _MISS, None, False, 0
        key = entry_prefix + version.decode()
        if entry is not None:
            self.stats[f"{policy}:hit"] += 1
            return orjson.loads(entry), len(entry), len(entry), pttl[0] if pttl else 0
        if not locked:  # another worker or instance is filling it: wait briefly for it
            entry = await self._wait_for(key)
            if entry is not None:
                self.stats[f"{policy}:hit"] += 1
                return orjson.loads(entry), len(entry), len(entry), 0
        self.stats[f"{policy}:miss"] += 1
        return _MISS, key, bool(locked), 0

    async def _fill(self, policy: str, key: str | None, locked: bool, load, near_key: tuple | None = None) -> Any:
        """Load from the backend and store the entry (unless Valkey was down: key None), and
        near (`near_key`: local key, scope, generation) once Valkey holds it."""
        try:
            data = await load()
        except BaseException:
            if locked and key is not None:  # let the next reader load at once instead of waiting out our lock
                await self._release(key + _LOCK)
            raise
        if key is None:
            return data
        ttl = max(1, int(self.policies[policy].ttl))
        raw = orjson.dumps(data)
        try:
            await self.valkey.execute_many((("SET", key, raw, "EX", ttl), ("DEL", key + _LOCK)))
        except (ValkeyError, OSError):
            return data  # the answer is still good; the next reader loads again
        if near_key is not None and self.near is not None:
            self.near.put(near_key[0], near_key[1], data, len(raw), ttl, near_key[2])
        return data

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
        await self._bump([(p, self._scope(ctx, p)) for p in policies])

    async def invalidate_user(self, user_id: str, policies: tuple[str, ...]) -> None:
        """Another user's entries of these per-user policies are stale (an admin changed them)."""
        await self._bump([(p, f"user:{user_id}") for p in policies
                          if p in self.policies and self.policies[p].scope == "user"])

    async def _bump(self, scopes: list[tuple[str, str]]) -> None:
        if not scopes:
            return
        policies = tuple(p for p, _ in scopes)
        if self.near is not None:  # this worker's own readers at once; the others when the push comes
            for p, scope in scopes:
                self.near.drop_scope(f"{p}:{scope}")
        try:
            await self.valkey.execute_many(("INCR", self._version_key(p, scope)) for p, scope in scopes)
        except (ValkeyError, OSError) as exc:
            # Entries may be served stale until their TTL: say so loudly.
            log.error("cache invalidation failed", extra={"policies": policies, "error": str(exc)[:200]})
