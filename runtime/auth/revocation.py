"""Revoked access tokens, shared by every gateway instance through Valkey.

Storage: `{prefix}revoked:{jti}` holds the moment the token stops being acceptable (its
`exp` plus the verifier's leeway) and expires then, so Valkey holds only tokens still alive.

Checking costs no Valkey round trip on the common path. Each worker keeps a local map
jti -> expiry, fed by pub/sub: `revoke` writes the key and publishes on `{prefix}revocations`
in one pipelined round trip, and every worker of every instance adds the jti as the message
arrives (milliseconds). Pub/sub is fire-and-forget, so the local map is trusted only while
it is known to be complete ("synced"):

1. subscribe, and wait for Valkey to confirm the subscription;
2. reload every revocation with SCAN + MGET (anything revoked from now on arrives as a
   message, anything before is in the keys: no gap);
3. synced: `is_revoked` answers from memory.

While not synced (starting, feed lost, Valkey restarted, local map over its cap),
`is_revoked` falls back to one `EXISTS` per request: correct, one round trip slower. A dead
feed is noticed by a read error or by a missed heartbeat PING, then resubscribed and
reloaded; a subscription the client re-established on its own shows up as a new subscribe
confirmation, which triggers the reload too.

The request path (the EXISTS fallback and `revoke`) goes through the multiplexed client
(runtime.valkey_mux) and its circuit breaker, never the valkey-py pool, which is only for the
feed (pub/sub, SCAN, MGET: off the request path).

A revocation is only reported done once Valkey holds it: `revoke` raises
BackendUnavailable (503, the client retries) otherwise, and does not even remember it
locally, so that the retried logout is not refused as "revoked" by this worker while every
other instance would still accept the token.

While the feed and Valkey are both unreachable nobody can tell whether a token was revoked
elsewhere; `security.revocation_unavailable` decides: `fail_open` (the default: refusing
every request while the cache is down would turn a cache outage into a full outage, and
access tokens live 15 minutes) accepts tokens this worker does not know to be revoked;
`fail_closed` answers 503. The change into and out of that state is logged once each way,
`unchecked` counts the requests answered under the policy, and /ready reports it.

Bounded memory: entries leave the local map when their token expires (a heap ordered by
expiry), and the map holds at most `max_local` entries; past that it stops being trusted as
complete (EXISTS again) until expiries bring it back under half the cap and a reload fits.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import time
from typing import Callable

from typing import TYPE_CHECKING

from valkey.asyncio import Valkey
from valkey.exceptions import ValkeyError

from runtime.valkey_feed import follow
from runtime.errors import BackendUnavailable

if TYPE_CHECKING:
    from runtime.valkey_mux import ValkeyMux

log = logging.getLogger("gateway.revocation")

_GLOB = str.maketrans({c: "\\" + c for c in "*?[]\\"})
_UNKNOWN_EXPIRY = 3600.0  # a key whose value we cannot read: keep it an hour (too long is safe)


FAIL_OPEN, FAIL_CLOSED = "fail_open", "fail_closed"


class RevocationList:
    def __init__(
        self,
        valkey: Valkey,
        requests: "ValkeyMux",
        prefix: str,
        *,
        leeway: float = 0.0,
        max_local: int = 100_000,
        heartbeat: float = 5.0,
        unavailable: str = FAIL_OPEN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if unavailable not in (FAIL_OPEN, FAIL_CLOSED):
            raise ValueError(f"unavailable must be {FAIL_OPEN} or {FAIL_CLOSED}, not {unavailable!r}")
        self.valkey = valkey  # the feed's: pub/sub, SCAN, MGET
        self.requests = requests  # the request path's: EXISTS, SET + PUBLISH
        self.unavailable = unavailable
        self.unchecked = 0  # checks answered by the `unavailable` policy (a counter for metrics)
        self._blind = False  # the last check could neither use the feed nor reach Valkey
        self.prefix = prefix + "revoked:"
        self.channel = prefix + "revocations"
        self.leeway = leeway
        self.max_local = max_local
        self.heartbeat = heartbeat
        self._clock = clock
        self._local: dict[str, float] = {}  # jti -> when the token stops being acceptable
        self._expiries: list[tuple[float, str]] = []  # heap of (until, jti) for forgetting
        self._subscribed = False  # subscription confirmed and the keys reloaded since
        self._overflow = False  # a revocation did not fit under max_local
        self._task: asyncio.Task | None = None

    @property
    def synced(self) -> bool:
        """True when the local map holds every live revocation: no round trip per check."""
        return self._subscribed and not self._overflow

    def __len__(self) -> int:
        return len(self._local)

    # -- the request path -------------------------------------------------------------------

    async def is_revoked(self, *ids: str) -> bool:
        """Whether any of `ids` (a token's jti, its session) is revoked: one EXISTS at most."""
        local = self._local
        if any(i in local for i in ids):
            return True
        if self.synced:
            return False
        try:
            found = await self.requests.exists(*(self.prefix + i for i in ids))
        except (ValkeyError, OSError) as exc:
            return self._unknown(exc)
        if self._blind:
            self._see_again()
        return bool(found)

    @property
    def blind(self) -> bool:
        """True while revocations cannot be checked (feed and Valkey both unreachable)."""
        return self._blind and not self.synced

    def _unknown(self, exc: Exception) -> bool:
        """Neither the feed nor Valkey can say: the configured policy answers."""
        self.unchecked += 1
        if not self._blind:
            self._blind = True
            log.error("revocations cannot be checked (feed and valkey unreachable): %s", self.unavailable,
                      extra={"error": str(exc)[:200], "policy": self.unavailable})
        if self.unavailable == FAIL_CLOSED:
            raise BackendUnavailable("Token revocation cannot be checked right now; try again",
                                     headers={"Retry-After": "1"})
        return False

    def _see_again(self) -> None:
        self._blind = False
        log.warning("revocations checked again")

    async def revoke(self, token_id: str, expires_at: float) -> None:
        """Store the revocation in Valkey and announce it, or raise BackendUnavailable."""
        until = expires_at + self.leeway  # the verifier accepts a token until exp + leeway
        ttl = max(1, math.ceil(until - self._clock()))
        try:
            await self.requests.execute_many((
                ("SET", self.prefix + token_id, repr(until), "EX", ttl),
                ("PUBLISH", self.channel, f"{token_id} {until!r}"),
            ))
        except (ValkeyError, OSError) as exc:
            log.warning("revocation not stored: valkey unavailable", extra={"error": str(exc)[:200]})
            raise BackendUnavailable("The revocation could not be stored; try again",
                                     headers={"Retry-After": "1"}) from None
        self._remember(token_id, until)  # this worker at once; the feed brings it to the others

    # -- the local map ----------------------------------------------------------------------

    def _remember(self, token_id: str, until: float) -> None:
        self._forget_expired()
        if until <= self._clock() or token_id in self._local:
            return
        if len(self._local) >= self.max_local:
            if not self._overflow:
                log.warning("revocation map full: checking valkey per request", extra={"size": len(self._local)})
            self._overflow = True
            return
        self._local[token_id] = until
        heapq.heappush(self._expiries, (until, token_id))

    def _forget_expired(self) -> None:
        now, heap = self._clock(), self._expiries
        while heap and heap[0][0] <= now:
            _, jti = heapq.heappop(heap)
            self._local.pop(jti, None)

    # -- following the feed ----------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self) -> None:
        """Subscribe, reload, apply messages; on any failure resubscribe with backoff."""
        await follow(self.valkey, self.channel, self._listen, live=lambda: self._subscribed,
                      lost=self._lost, what="revocation feed (checking valkey per request meanwhile)")

    def _lost(self) -> None:
        self._subscribed = False

    async def _listen(self, pubsub) -> None:
        loop = asyncio.get_running_loop()
        last_ping = last_heard = loop.time()
        while True:
            message = await pubsub.get_message(timeout=min(1.0, self.heartbeat))
            now = loop.time()
            if message is not None:
                last_heard = now
                kind = message["type"]
                if kind == "message":
                    self._apply(message["data"])
                elif kind == "subscribe":
                    # First subscription, or the client resubscribed after a reconnect:
                    # what was published meanwhile is lost, so reload it all from the keys.
                    self._subscribed = False
                    await self._reload()
                    self._subscribed = True
                    if self._blind:
                        self._see_again()
            if now - last_ping >= self.heartbeat:
                if now - last_heard > 2 * self.heartbeat:
                    raise ConnectionError("revocation feed silent: no answer to PING")
                await pubsub.ping()
                last_ping = now
                self._forget_expired()
                if self._overflow and len(self._local) < self.max_local // 2:
                    await self._reload()

    def _apply(self, data: bytes) -> None:
        jti, _, until = data.decode("utf-8", "replace").rpartition(" ")
        try:
            self._remember(jti, float(until))
        except ValueError:
            log.warning("malformed revocation message ignored")

    async def _reload(self) -> None:
        self._overflow = False  # a full reload that fits makes the map complete again
        batch: list[bytes] = []
        async for key in self.valkey.scan_iter(match=self.prefix.translate(_GLOB) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await self._load(batch)
                batch = []
        if batch:
            await self._load(batch)

    async def _load(self, keys: list[bytes]) -> None:
        now = self._clock()
        mget = getattr(self.valkey, "mget_nonatomic", self.valkey.mget)  # a cluster: keys of many slots
        for key, value in zip(keys, await mget(keys)):
            if value is None:
                continue  # expired between SCAN and MGET
            try:
                until = float(value)
            except ValueError:
                until = now + _UNKNOWN_EXPIRY
            self._remember(key.decode("utf-8", "replace")[len(self.prefix):], until)
