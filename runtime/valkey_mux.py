"""A multiplexed Valkey client for the request path: the rate-limit script and the cache.

Why not valkey-py here: each of its asyncio commands checks a connection out of a pool,
arms an asyncio timeout, encodes through several layers and parses through a stream reader:
~120 µs of CPU per script call one at a time (this client: ~55, of which ~28 is the kernel's
round trip), most of what an authenticated request cost. This client keeps one long-lived
connection (or a few, `redis.connections`) per worker, shared by every request of the worker:

- A command is packed into RESP once and queued; the commands queued in one loop iteration
  go out in one write (pipelining without a pipeline object) and each caller awaits a future.
- Valkey answers in order, so `data_received` parses replies incrementally and resolves the
  futures first in, first out.
- Timeouts: a watchdog per connection instead of an asyncio timeout per call. When the
  oldest unanswered command is older than `timeout`, the whole connection fails (TimeoutError
  for every waiting caller): its late replies could no longer be matched to their callers.
- Connection loss fails every pending call at once (ConnectionError); the next call
  reconnects, one connect attempt at a time per connection.
- A circuit breaker (one per client, so one for the cache, the limiter and the revocation
  checks alike): a timeout or a lost or refused connection opens it, and for `cooldown`
  seconds every call fails at once with CircuitOpenError instead of waiting `timeout` for a
  server that accepts connections but never answers (SIGSTOP, a swapping host). Then it is
  half-open: one PING of its own probes the server, while callers keep failing fast (no
  request pays for the probe); a PONG closes it, anything else opens it again.
- Bounded: past `max_pending` unanswered commands a call fails fast with ConnectionError
  instead of queueing. That many means Valkey is not keeping up; every caller has a fallback
  (the local rate limiter, reading through to the backend) that beats waiting in a queue.
- Errors are valkey-py's exception types and replies its raw types (bytes, int, list, None),
  so callers' `except (ValkeyError, OSError)` fallbacks work unchanged.

- Server-assisted invalidation (`Tracker`): one more connection per worker speaks RESP3
  (HELLO 3) with `CLIENT TRACKING on BCAST PREFIX ...`, so Valkey pushes the name of every key
  under those prefixes that anyone changes; the near cache (runtime.near_cache) drops what it
  holds of them. Push frames (`>`) go to a callback, never to a caller's future.
Pub/sub, SCAN and the health check stay on valkey-py: they are off the request path.
A Valkey Cluster (`redis.mode: cluster`): runtime.valkey_cluster.ClusterMux, this client
with a slot map in front and one ValkeyMux per node. Sentinel (`redis.mode: sentinel`):
runtime.valkey_sentinel.SentinelMux, this client asking the sentinels where the primary is
whenever it (re)connects.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from typing import Any, Awaitable, Callable, Iterable, Sequence

from valkey import exceptions as errors
from valkey._parsers.base import BaseParser  # maps "-NOSCRIPT ..." etc. to valkey-py's classes

from runtime.backends.breaker import CLOSED, CircuitBreaker, CircuitOpen

log = logging.getLogger("gateway.valkey")

_INCOMPLETE = object()


class Push(list):
    """A RESP3 out-of-band push (`>`), e.g. ["invalidate", [keys] or None]: nobody's reply."""


class CircuitOpenError(errors.ConnectionError):
    """Refused without reaching Valkey: the breaker is open, or its probe is in flight."""


class Overloaded(errors.ConnectionError):
    """Too many commands already wait on the connection: Valkey is slow, not gone (no trip)."""


def pack(args: Sequence[Any]) -> bytes:
    """One command as a RESP array of bulk strings (valkey-py's argument rules)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        kind = type(arg)
        if kind is str:
            arg = arg.encode()
        elif kind is int:
            arg = b"%d" % arg
        elif kind is float:
            arg = repr(arg).encode()
        elif kind is not bytes:
            if not isinstance(arg, (bytes, bytearray, memoryview)):  # bool and None too, like valkey-py
                raise errors.DataError(f"Invalid input of type: {kind.__name__!r}. Convert to bytes, str, int or float first.")
            arg = bytes(arg)
        parts += (b"$%d\r\n" % len(arg), arg, b"\r\n")
    return b"".join(parts)


def parse(buf: bytes, pos: int) -> tuple[Any, int]:
    """(reply, position after it), or (_INCOMPLETE, the buffer length it needs at least).

    An error reply is returned as its exception, not raised: inside an array it is a value.
    """
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return _INCOMPLETE, len(buf) + 1
    kind = buf[pos]
    if kind == 36:  # $ bulk string
        size = int(buf[pos + 1:end])
        if size < 0:
            return None, end + 2
        stop = end + 2 + size
        if len(buf) < stop + 2:
            return _INCOMPLETE, stop + 2
        return buf[end + 2:stop], stop + 2
    if kind == 58:  # : integer
        return int(buf[pos + 1:end]), end + 2
    if kind == 42:  # * array
        count = int(buf[pos + 1:end])
        if count < 0:
            return None, end + 2
        items, pos = [], end + 2
        for _ in range(count):
            item, pos = parse(buf, pos)
            if item is _INCOMPLETE:
                return item, pos
            items.append(item)
        return items, pos
    if kind == 43:  # + simple string
        return buf[pos + 1:end], end + 2
    if kind == 45:  # - error
        return BaseParser.parse_error(buf[pos + 1:end].decode(errors="replace")), end + 2
    return _parse_resp3(buf, pos, end, kind)


def _parse_resp3(buf: bytes, pos: int, end: int, kind: int) -> tuple[Any, int]:
    """The RESP3 types, which only the tracking connection (HELLO 3) receives."""
    if kind in (62, 126, 37):  # > push, ~ set, % map (as a flat list of keys and values)
        count = int(buf[pos + 1:end]) * (2 if kind == 37 else 1)
        items, pos = (Push() if kind == 62 else []), end + 2
        for _ in range(count):
            item, pos = parse(buf, pos)
            if item is _INCOMPLETE:
                return item, pos
            items.append(item)
        return items, pos
    if kind == 95:  # _ null
        return None, end + 2
    if kind == 35:  # # boolean
        return buf[pos + 1:end] == b"t", end + 2
    if kind == 44:  # , double
        return float(buf[pos + 1:end]), end + 2
    if kind == 40:  # ( big number
        return int(buf[pos + 1:end]), end + 2
    if kind in (61, 33):  # = verbatim string, ! blob error: sized like a bulk string
        size = int(buf[pos + 1:end])
        stop = end + 2 + size
        if len(buf) < stop + 2:
            return _INCOMPLETE, stop + 2
        if kind == 33:
            return BaseParser.parse_error(buf[end + 2:stop].decode(errors="replace")), stop + 2
        return buf[end + 6:stop], stop + 2  # without the "txt:" format prefix
    raise errors.InvalidResponse(f"Protocol error, got {buf[pos:pos + 1]!r} as reply type byte")


def _fresh(exc: Exception) -> Exception:
    """A new instance per caller: one shared instance would collect every caller's traceback."""
    return type(exc)(*exc.args)


class _Connection(asyncio.Protocol):
    """One TCP connection: writes commands, matches replies to waiting futures in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, max_pending: int) -> None:
        self.loop = loop
        self.timeout = timeout
        self.max_pending = max_pending
        self.transport: asyncio.Transport | None = None
        self.pending: deque[tuple[asyncio.Future, float]] = deque()  # (future, sent at)
        self.error: Exception | None = None  # set once the connection is unusable
        self.lost = loop.create_future()
        self._chunks: list[bytes] = []  # an incomplete reply's bytes so far
        self._size = 0
        self._need = 0  # bytes the incomplete reply needs at least before parsing it again
        self._watchdog: asyncio.TimerHandle | None = None
        self._outbox: list[bytes] = []  # commands of this loop iteration, written together
        self.on_push: Callable[[Push], None] | None = None  # RESP3 pushes (the tracking connection)
        # Told (soon after) of a READONLY error reply: the server is a replica now (a Sentinel
        # failover demoted it). On the error branch only: a reply that succeeds pays nothing.
        self.on_readonly: Callable[["_Connection"], None] | None = None
        self.address: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._watchdog = self.loop.call_later(self.timeout / 4, self._check)

    def send_one(self, payload: bytes) -> asyncio.Future:
        """Queue one command; the future gets its reply."""
        if self.error is not None or len(self.pending) >= self.max_pending:
            self._refuse()
        future = self.loop.create_future()
        self.pending.append((future, self.loop.time()))
        self._write(payload)
        return future

    def send(self, payload: bytes, replies: int) -> list[asyncio.Future]:
        """Queue `payload` holding that many commands; one future per reply."""
        if self.error is not None or len(self.pending) + replies > self.max_pending:
            self._refuse()
        now, create = self.loop.time(), self.loop.create_future
        futures = [create() for _ in range(replies)]
        self.pending.extend((f, now) for f in futures)
        self._write(payload)
        return futures

    async def call_many(self, payloads: list[bytes]) -> list[Any]:
        """Several commands in one write; their replies, or the first error once all are in."""
        replies = await asyncio.gather(*self.send(b"".join(payloads), len(payloads)), return_exceptions=True)
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return replies

    def _refuse(self) -> None:
        if self.error is not None:
            raise _fresh(self.error)
        raise Overloaded(f"Too many pending Valkey commands ({self.max_pending}) on one connection")

    def _write(self, payload: bytes) -> None:
        # Written once this loop iteration's callers have queued theirs: under load one send()
        # carries many requests' commands instead of one syscall each.
        if not self._outbox:
            self.loop.call_soon(self._flush)
        self._outbox.append(payload)

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        if self.error is None and outbox and self.transport is not None:
            self.transport.write(outbox[0] if len(outbox) == 1 else b"".join(outbox))

    def data_received(self, data: bytes) -> None:
        if self._chunks:  # joined only once the reply can be complete: O(n) for a large value
            self._chunks.append(data)
            self._size += len(data)
            if self._size < self._need:
                return
            data = b"".join(self._chunks)
            self._chunks.clear()
        pos, pending = 0, self.pending
        try:
            while pos < len(data):
                reply, after = parse(data, pos)
                if reply is _INCOMPLETE:
                    self._chunks.append(data[pos:])
                    self._size, self._need = len(data) - pos, after - pos
                    return
                pos = after
                if type(reply) is Push:
                    if self.on_push is not None:
                        self.on_push(reply)
                    continue
                future = pending.popleft()[0]  # IndexError: a reply nobody asked for
                if not future.done():  # a cancelled caller's reply is read and dropped
                    if isinstance(reply, errors.ValkeyError):  # an error reply (NOAUTH is a ConnectionError)
                        future.set_exception(reply)
                        if self.on_readonly is not None and isinstance(reply, errors.ReadOnlyError):
                            self.loop.call_soon(self.on_readonly, self)
                    else:
                        future.set_result(reply)
        except (ValueError, IndexError, errors.InvalidResponse) as exc:
            self.fail(errors.InvalidResponse(f"Protocol error from Valkey: {exc}"))

    def _check(self) -> None:
        """The watchdog: a reply late by `timeout` fails the connection. Idle, it looks every
        timeout/4; with commands pending it wakes exactly when the oldest is due, so a stalled
        server fails its callers (and opens the breaker) at `timeout`, not up to a quarter later."""
        delay = self.timeout / 4
        if self.pending:
            late = self.loop.time() - self.pending[0][1] - self.timeout
            if late >= 0:
                self.fail(errors.TimeoutError(f"Timeout reading from Valkey (no reply within {self.timeout}s)"))
                return
            delay = min(delay, -late)
        if self.error is None:
            self._watchdog = self.loop.call_later(delay, self._check)

    def fail(self, exc: Exception) -> None:
        """Fail every waiting caller with `exc` and drop the connection."""
        if self.error is None:
            self.error = exc
        pending, self.pending = self.pending, deque()
        self._outbox.clear()
        for future, _ in pending:
            if not future.done():
                future.set_exception(_fresh(exc))
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()  # unsent commands are dropped: their callers have failed

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc else ""
        self.fail(errors.ConnectionError(f"Connection to Valkey lost{reason}"))
        if not self.lost.done():
            self.lost.set_result(None)


class Script:
    """A Lua script known by its SHA1; called like valkey-py's: `await script(keys=, args=)`."""

    __slots__ = ("client", "source", "sha")

    def __init__(self, client: "ValkeyMux", source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Awaitable[Any]:
        return self.client.evalsha(self, keys, args)  # not a coroutine itself: one frame less per call


class _Slot:
    """One connection of the client and what it takes to (re)open it."""

    __slots__ = ("conn", "lock")

    def __init__(self) -> None:
        self.conn: _Connection | None = None
        self.lock = asyncio.Lock()  # one connect attempt at a time


class ValkeyMux:
    def __init__(self, host: str = "localhost", port: int = 6379, *, password: str = "", db: int = 0,
                 timeout: float = 1.0, connections: int = 1, max_pending: int = 4096,
                 cooldown: float = 1.0) -> None:
        self.host, self.port, self.password, self.db = host, port, password, db
        self.timeout = timeout
        self.max_pending = max_pending
        self._slots = [_Slot() for _ in range(connections)]
        self._turn = 0
        self._closed = False
        # One failure opens it: a timeout has already cost `timeout`, and every caller waiting
        # on the connection failed with it.
        self.breaker = CircuitBreaker(failure_threshold=1, cooldown=cooldown, half_open_probes=1)
        self._probe: asyncio.Task | None = None

    @classmethod
    def from_config(cls, redis: Any) -> "ValkeyMux":
        return cls(redis.host, redis.port, password=redis.password, db=redis.db,
                   timeout=redis.timeout, connections=redis.connections, cooldown=redis.breaker_cooldown)

    @property
    def available(self) -> bool:
        """False while the breaker is not closed: calls fail fast, callers use their fallbacks."""
        return self.breaker.state == CLOSED

    @property
    def breaker_state(self) -> str:
        return self.breaker.state

    def by_slot(self, keys: Sequence[Any]) -> list[list[int]] | None:
        """Indexes of `keys` grouped by cluster slot, or None when one call may hold them all
        (always, on one server). A script's keys must share a slot in a cluster."""
        return None

    # ------------------------------------------------------------------ commands

    def execute(self, *args: Any) -> Awaitable[Any]:
        return self._call(pack(args))

    def execute_many(self, commands: Iterable[Sequence[Any]]) -> Awaitable[list[Any]]:
        """Several commands in one write (not a transaction); raises the first error reply."""
        return self._call_many([pack(c) for c in commands])

    async def _call_many(self, payloads: list[bytes]) -> list[Any]:
        self._admit()
        try:
            return await (await self._connection()).call_many(payloads)
        except (errors.TimeoutError, errors.ConnectionError) as exc:
            self._failed(exc)
            raise

    def register_script(self, source: str) -> Script:
        return Script(self, source)

    async def evalsha(self, script: Script, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        payload = pack(("EVALSHA", script.sha, len(keys), *keys, *args))
        try:
            return await self._call(payload)
        except errors.NoScriptError:  # a restarted or flushed server: load it, retry once
            await self.execute("SCRIPT", "LOAD", script.source)
            return await self._call(payload)

    async def get(self, key: Any) -> bytes | None:
        return await self.execute("GET", key)

    async def mget(self, *keys: Any) -> list[bytes | None]:
        return await self.execute("MGET", *keys)

    async def set(self, key: Any, value: Any, *, ex: int | None = None, px: int | None = None,
                  nx: bool = False) -> bool | None:
        """True when set, None when `nx` found the key (valkey-py's answers)."""
        args: list[Any] = ["SET", key, value]
        if ex is not None:
            args += ("EX", ex)
        if px is not None:
            args += ("PX", px)
        if nx:
            args.append("NX")
        return True if await self.execute(*args) == b"OK" else None

    async def delete(self, *keys: Any) -> int:
        return await self.execute("DEL", *keys)

    async def exists(self, *keys: Any) -> int:
        return await self.execute("EXISTS", *keys)

    async def incr(self, key: Any, amount: int = 1) -> int:
        return await self.execute("INCRBY", key, amount)

    async def ping(self) -> bool:
        return await self.execute("PING") == b"PONG"

    # ------------------------------------------------------------------ connections

    async def _call(self, payload: bytes) -> Any:
        self._admit()
        try:
            conn = self._slots[0].conn if len(self._slots) == 1 else None
            if conn is None or conn.error is not None:
                conn = await self._connection()
            return await conn.send_one(payload)
        except (errors.TimeoutError, errors.ConnectionError) as exc:
            self._failed(exc)
            raise

    # ------------------------------------------------------------------ the breaker

    def _admit(self) -> None:
        """Return when the breaker is closed; else raise CircuitOpenError (after starting the
        half-open probe if this caller was admitted as one: the probe is ours, not theirs)."""
        try:
            if not self.breaker.admit() or self._closed:  # closed: _connect says so
                return
        except CircuitOpen as exc:
            raise CircuitOpenError(f"Valkey circuit open: failing fast for {exc.retry_after:.2f}s more") from None
        self._probe = asyncio.get_running_loop().create_task(self._run_probe())
        raise CircuitOpenError("Valkey circuit half-open: probing the server")

    def _failed(self, exc: Exception) -> None:
        if self._closed or isinstance(exc, (CircuitOpenError, Overloaded)):
            return
        if self.breaker.state == CLOSED:
            log.warning("valkey unreachable: request path fails fast for %.1fs, then probes",
                        self.breaker.cooldown, extra={"error": str(exc)[:200]})
            self.breaker.failure()
            self._probe_later()
        else:
            self.breaker.failure()  # a call admitted before the trip: counted, changes nothing

    def _probe_later(self, delay: float | None = None) -> None:
        """Probe when the cool-down ends, whether or not a request comes: the path is back
        before the next request needs it."""
        asyncio.get_running_loop().call_later(self.breaker.cooldown if delay is None else delay, self._probe_now)

    def _probe_now(self) -> None:
        if self._closed or self.breaker.state == CLOSED:
            return
        early = self.breaker.retry_after()  # the loop's clock may run ahead of the breaker's
        if early > 0:
            self._probe_later(early + 0.001)
            return
        try:
            if self.breaker.admit():
                self._probe = asyncio.get_running_loop().create_task(self._run_probe())
        except CircuitOpen:
            pass  # a probe is already in flight

    async def _run_probe(self) -> None:
        try:
            conn = await self._connection()
            ok = await conn.send_one(pack(("PING",))) == b"PONG"
        except Exception:  # timeout, refused, closed: still down
            ok = False
        if ok:
            self.breaker.success(probe=True)
            log.warning("valkey reachable again: request path uses it again")
        else:
            self.breaker.failure(probe=True)
            self._probe_later()

    async def _connection(self) -> _Connection:
        slots = self._slots
        if len(slots) == 1:
            slot = slots[0]
        else:  # round robin
            self._turn = (self._turn + 1) % len(slots)
            slot = slots[self._turn]
        conn = slot.conn
        if conn is None or conn.error is not None:
            conn = await self._connect(slot)
        return conn

    async def _connect(self, slot: _Slot) -> _Connection:
        async with slot.lock:
            if self._closed:
                raise errors.ConnectionError("Valkey client is closed")
            if slot.conn is not None and slot.conn.error is None:
                return slot.conn  # another caller connected while we waited
            # No backoff of its own after a failed attempt: the breaker has opened, so nobody
            # tries again before its probe does.
            slot.conn = await self._open(asyncio.get_running_loop())
            return slot.conn

    async def _open(self, loop: asyncio.AbstractEventLoop, address: tuple[str, int] | None = None) -> _Connection:
        """A new connection to `address` (default: host and port), authenticated, its db selected."""
        host, port = address or (self.host, self.port)
        where = f"{host}:{port}"
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(loop, self.timeout, self.max_pending), host, port),
                self.timeout,
            )
        except asyncio.TimeoutError:
            raise errors.TimeoutError(f"Timeout connecting to Valkey at {where}") from None
        except OSError as exc:
            raise errors.ConnectionError(f"Error connecting to Valkey at {where}: {exc}") from None
        hello = []
        if self.password:
            hello.append(pack(("AUTH", self.password)))
        if self.db:
            hello.append(pack(("SELECT", self.db)))
        if hello:
            try:  # the watchdog bounds these too
                await conn.call_many(hello)
            except BaseException:
                conn.fail(errors.ConnectionError("Valkey connection set-up failed"))
                raise
        conn.address = (host, port)
        return conn

    async def aclose(self) -> None:
        """Fail what is still pending and close every connection (the worker's shutdown)."""
        self._closed = True
        if self._probe is not None:
            self._probe.cancel()
        for slot in self._slots:
            conn, slot.conn = slot.conn, None
            if conn is not None:
                conn.fail(errors.ConnectionError("Valkey client is closed"))
                await conn.lost


def parse_address(address: str) -> tuple[str, int]:
    """`host:port` (an IPv6 host in brackets) as configured for cluster seeds and sentinels."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


async def hold(conn: _Connection, ping_interval: float) -> None:
    """Wait until `conn` is lost, with a PING every `ping_interval` so that its watchdog
    notices a server that stopped answering (a connection that only listens for pushes)."""
    while conn.error is None:
        try:
            await asyncio.wait_for(asyncio.shield(conn.lost), ping_interval)
        except asyncio.TimeoutError:
            await conn.call_many([pack(("PING",))])


class Tracker:
    """Server-assisted invalidation: one RESP3 connection with `CLIENT TRACKING on BCAST` over
    `prefixes`. `on_invalidate(keys)` gets the keys of every push (None: everything, after a
    FLUSHALL); `on_state(live)` says when tracking starts and when it is lost (the holder must
    then forget everything: changes made while blind are never pushed). A PING every
    `ping_interval` lets the watchdog notice a server that stopped answering."""

    def __init__(self, client: ValkeyMux, prefixes: Sequence[str], on_invalidate: Callable[[list | None], None],
                 on_state: Callable[[bool], None], *, ping_interval: float = 1.0, retry_interval: float = 0.5) -> None:
        self.client = client
        self.command = ("CLIENT", "TRACKING", "on", "BCAST", *(a for p in prefixes for a in ("PREFIX", p)))
        self.on_invalidate = on_invalidate
        self.on_state = on_state
        self.ping_interval = ping_interval
        self.retry_interval = retry_interval
        self.live = False
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def _pushed(self, push: Push) -> None:
        if len(push) >= 2 and push[0] == b"invalidate":
            self.on_invalidate(push[1])

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn = None
            try:
                conn = await self.client._open(loop)
                conn.on_push = self._pushed
                await conn.call_many([pack(("HELLO", "3")), pack(self.command)])
                self.live = True
                self.on_state(True)
                await hold(conn, self.ping_interval)
            except (errors.ValkeyError, OSError, asyncio.TimeoutError) as exc:
                log.debug("cache invalidation connection failed", extra={"error": str(exc)[:200]})
            finally:
                if conn is not None:
                    conn.fail(errors.ConnectionError("tracking connection closed"))
                if self.live:
                    self.live = False
                    self.on_state(False)
            await asyncio.sleep(self.retry_interval)
