"""The request-path client behind Valkey Sentinel (`redis.mode: sentinel`).

`SentinelMux` is `runtime.valkey_mux.ValkeyMux` whose address is not configured but asked of
the sentinels each time it (re)connects, so a call costs exactly what it costs on one server:
resolution happens at connect time only.

- Resolution: `SENTINEL get-master-addr-by-name <name>` to each sentinel in turn (the one that
  answered last first; each sentinel is a small ValkeyMux of its own, so a dead one fails fast
  behind its breaker). The answer is then verified on the new connection: `ROLE` must say
  `master`, else the connection is dropped (mid-failover, a sentinel may still name a primary
  that has just been demoted, or a restarted old primary that thinks it still is one).
- Following a failover, whichever comes first:
  - the connection is lost (the primary died, or Sentinel's reconfiguration killed its clients):
    callers fail at once and fall back, the breaker opens, and its probe reconnects, resolving
    again, until the sentinels name a primary that answers;
  - a `READONLY` error reply (writing to a demoted primary): that connection is dropped;
  - `+switch-master` announced on the sentinels' pub/sub: one RESP3 subscription to one
    sentinel at a time (the next after a loss) is told of every switch; every connection to
    the old primary is dropped, the tracking connection (`Tracker`) included, so the near
    cache is flushed and bypassed until tracking is back on the new primary.
- `primary` is the address last verified, None while no primary is known (resolution failed,
  ROLE said replica, or every connection to it was lost): /ready shows it and the health
  check fails meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Sequence

from valkey import exceptions as errors
from valkey.asyncio.connection import BlockingConnectionPool
from valkey.asyncio.sentinel import SentinelConnectionPool

from runtime.valkey_mux import Push, ValkeyMux, _Connection, hold, pack, parse_address

log = logging.getLogger("gateway.valkey")

SWITCH_CHANNEL = "+switch-master"
WATCH_RETRY = 0.5  # seconds between attempts at the sentinels' pub/sub while none answers
WATCH_PING = 1.0  # a PING on the subscription this often: the watchdog notices a silent sentinel


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """valkey-py's sentinel pool (the primary asked of the sentinels at each connect) that,
    like the standalone client's, waits up to `timeout` for a free connection past
    `max_connections` instead of failing at once with "Too many connections"."""


class SentinelMux(ValkeyMux):
    """ValkeyMux's interface, its primary found through the sentinels (see the module docstring)."""

    def __init__(self, sentinels: Sequence[tuple[str, int]], master: str, *, password: str = "",
                 sentinel_password: str = "", db: int = 0, timeout: float = 1.0, connections: int = 1,
                 max_pending: int = 4096, cooldown: float = 1.0) -> None:
        if not sentinels:
            raise ValueError("SentinelMux needs at least one sentinel")
        super().__init__("", 0, password=password, db=db, timeout=timeout, connections=connections,
                         max_pending=max_pending, cooldown=cooldown)
        self.master = master
        self.sentinels = [ValkeyMux(h, int(p), password=sentinel_password, timeout=timeout, cooldown=cooldown)
                          for h, p in sentinels]
        self.primary: tuple[str, int] | None = None  # verified by ROLE; None while unknown
        self.resolutions = 0  # primaries named by a sentinel (each connect asks)
        self.switches = 0  # +switch-master announcements received for our master
        self.watching: str | None = None  # the sentinel whose announcements we hear, host:port
        self.last_error = ""
        self._opened: set[_Connection] = set()  # live connections to the primary (tracking's too)
        self._watcher: asyncio.Task | None = None

    @classmethod
    def from_config(cls, redis: Any) -> "SentinelMux":
        return cls([parse_address(a) for a in redis.sentinels], redis.sentinel_master, password=redis.password,
                   sentinel_password=redis.sentinel_password, db=redis.db, timeout=redis.timeout,
                   connections=redis.connections, cooldown=redis.breaker_cooldown)

    def describe(self) -> dict[str, Any]:
        """What /ready shows of the sentinel set-up."""
        return {
            "master": self.master,
            "primary": f"{self.primary[0]}:{self.primary[1]}" if self.primary else None,
            "sentinels": [f"{s.host}:{s.port}" for s in self.sentinels],
            "watching": self.watching,
            "switches": self.switches,
        }

    # ------------------------------------------------------------------ resolution

    async def resolve(self) -> tuple[str, int]:
        """The primary's address as the first sentinel that answers names it."""
        failures = []
        for i, sentinel in enumerate(list(self.sentinels)):
            try:
                reply = await sentinel.execute("SENTINEL", "get-master-addr-by-name", self.master)
            except (errors.ValkeyError, OSError) as exc:
                failures.append(f"{sentinel.host}:{sentinel.port}: {str(exc)[:120]}")
                continue
            if not reply:
                failures.append(f"{sentinel.host}:{sentinel.port}: monitors no master named {self.master!r}")
                continue
            if i:  # ask the one that answered first next time
                self.sentinels.insert(0, self.sentinels.pop(i))
            self.resolutions += 1
            return reply[0].decode(), int(reply[1])
        self._unknown("no sentinel named a primary: " + "; ".join(failures))
        raise errors.ConnectionError(f"No sentinel named a primary for {self.master!r}: {'; '.join(failures)}")

    def _unknown(self, why: str) -> None:
        if self.primary is not None:
            log.warning("valkey primary unknown until the sentinels name one that answers", extra={"error": why[:200]})
        self.primary, self.last_error = None, why

    async def _open(self, loop: asyncio.AbstractEventLoop, address: tuple[str, int] | None = None) -> _Connection:
        """A connection to the primary the sentinels name, verified by ROLE (also for the Tracker)."""
        if self._watcher is None and not self._closed:
            self._watcher = loop.create_task(self._watch())
        address = address or await self.resolve()
        conn = await super()._open(loop, address)
        try:
            role = (await conn.call_many([pack(("ROLE",))]))[0]
        except BaseException:
            conn.fail(errors.ConnectionError("Valkey connection set-up failed"))
            raise
        if not role or role[0] != b"master":
            conn.fail(errors.ConnectionError("not the primary"))
            seen = role[0] if role else None
            why = f"{address[0]}:{address[1]} answers ROLE {seen!r}, not master"
            self._unknown(why)
            raise errors.ConnectionError(f"The sentinels named {why} (a failover in progress)")
        conn.on_readonly = self._demoted
        self._opened.add(conn)
        conn.lost.add_done_callback(lambda _: self._closed_one(conn))
        self._adopt(address)
        return conn

    def _adopt(self, address: tuple[str, int]) -> None:
        if address != self.primary:
            (log.info if self.primary is None and not self.switches else log.warning)(
                "valkey primary (sentinel master %s): %s:%d", self.master, *address)
        self.primary, self.host, self.port, self.last_error = address, address[0], address[1], ""
        self._drop(lambda a: a != address, f"the primary is now {address[0]}:{address[1]}")

    def _drop(self, which: Any, why: str) -> None:
        for conn in [c for c in self._opened if which(c.address)]:
            conn.fail(errors.ConnectionError(f"Connection to the old Valkey primary dropped: {why}"))

    def _closed_one(self, conn: _Connection) -> None:
        self._opened.discard(conn)
        if not self._closed and conn.address == self.primary and not any(c.address == self.primary for c in self._opened):
            self._unknown(f"every connection to {conn.address} lost")

    def _demoted(self, conn: _Connection) -> None:
        """READONLY: the server behind `conn` is a replica now; reconnect (resolving) instead."""
        address = conn.address
        log.warning("valkey primary answered READONLY: demoted by a failover; resolving again")
        self._drop(lambda a: a == address, "it answered READONLY")

    # ------------------------------------------------------------------ +switch-master

    def _announced(self, push: Push) -> None:
        if len(push) < 3 or push[0] != b"message" or push[1] != SWITCH_CHANNEL.encode():
            return  # the subscribe confirmation
        fields = push[2].decode(errors="replace").split()
        if len(fields) != 5 or fields[0] != self.master:
            return  # another master these sentinels monitor
        new = (fields[3], int(fields[4]))
        self.switches += 1
        log.warning("sentinel announced a failover of %s: %s:%s -> %s:%d", self.master, fields[1], fields[2], *new)
        self._drop(lambda a: a != new, f"the sentinels switched to {new[0]}:{new[1]}")
        if self.primary != new:
            self._unknown(f"switching to {new[0]}:{new[1]}")
        if not self.available:
            self._probe_now()  # the breaker's probe reconnects when its cool-down ends

    async def _watch(self) -> None:
        """Hold one `+switch-master` subscription, on the sentinels in turn, for ever."""
        loop, turn = asyncio.get_running_loop(), 0
        while not self._closed:
            sentinel = self.sentinels[turn % len(self.sentinels)]
            turn += 1
            conn = None
            try:
                conn = await sentinel._open(loop)
                await conn.call_many([pack(("HELLO", "3"))])
                conn.on_push = self._announced
                # In RESP3 the subscribe confirmation is a push, not a reply: nothing to await.
                if conn.transport is not None:
                    conn.transport.write(pack(("SUBSCRIBE", SWITCH_CHANNEL)))
                self.watching = f"{sentinel.host}:{sentinel.port}"
                await hold(conn, WATCH_PING)
            except (errors.ValkeyError, OSError, asyncio.TimeoutError) as exc:
                log.debug("sentinel subscription failed", extra={"error": str(exc)[:200]})
            finally:
                self.watching = None
                if conn is not None:
                    conn.fail(errors.ConnectionError("sentinel subscription closed"))
            if turn % len(self.sentinels) == 0:
                await asyncio.sleep(WATCH_RETRY)  # every sentinel tried: wait before the next round

    # ------------------------------------------------------------------ health

    async def health_check(self) -> bool:
        """For the health monitor: a sentinel names a primary, and the request path's connection
        reaches that very server and it says it is the primary."""
        address = await self.resolve()
        role = await self.execute("ROLE")
        if not role or role[0] != b"master":
            self._drop(lambda a: True, "it is no longer the primary")
            self._unknown(f"{self.host}:{self.port} answers ROLE {(role[0] if role else None)!r}")
            raise errors.ConnectionError(f"{self.host}:{self.port} is not the primary any more")
        if (self.host, self.port) != address:
            self._drop(lambda a: a != address, f"the sentinels name {address[0]}:{address[1]}")
            raise errors.ConnectionError(f"connected to {self.host}:{self.port}, the sentinels name "
                                         f"{address[0]}:{address[1]}: reconnecting")
        return True

    async def aclose(self) -> None:
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
            try:
                await self._watcher
            except (asyncio.CancelledError, Exception):
                pass
        await super().aclose()
        await asyncio.gather(*(s.aclose() for s in self.sentinels), return_exceptions=True)
