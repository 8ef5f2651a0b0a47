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
  reconnects. One connect attempt at a time per connection, and after a failed one calls
  fail fast for `backoff` seconds instead of each paying a connect attempt.
- Bounded: past `max_pending` unanswered commands a call fails fast with ConnectionError
  instead of queueing. That many means Valkey is not keeping up; every caller has a fallback
  (the local rate limiter, reading through to the backend) that beats waiting in a queue.
- Errors are valkey-py's exception types and replies its raw types (bytes, int, list, None),
  so callers' `except (ValkeyError, OSError)` fallbacks work unchanged.

Pub/sub, SCAN and the health check stay on valkey-py: they are off the request path.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from typing import Any, Awaitable, Iterable, Sequence

from valkey import exceptions as errors
from valkey._parsers.base import BaseParser  # maps "-NOSCRIPT ..." etc. to valkey-py's classes

_INCOMPLETE = object()


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
        raise errors.ConnectionError(f"Too many pending Valkey commands ({self.max_pending}) on one connection")

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
                future = pending.popleft()[0]  # IndexError: a reply nobody asked for
                if not future.done():  # a cancelled caller's reply is read and dropped
                    if isinstance(reply, errors.ValkeyError):  # an error reply (NOAUTH is a ConnectionError)
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        except (ValueError, IndexError, errors.InvalidResponse) as exc:
            self.fail(errors.InvalidResponse(f"Protocol error from Valkey: {exc}"))

    def _check(self) -> None:
        """The watchdog, every timeout/4: a reply late by `timeout` fails the connection."""
        if self.pending and self.loop.time() - self.pending[0][1] >= self.timeout:
            self.fail(errors.TimeoutError(f"Timeout reading from Valkey (no reply within {self.timeout}s)"))
        elif self.error is None:
            self._watchdog = self.loop.call_later(self.timeout / 4, self._check)

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

    __slots__ = ("conn", "lock", "retry_at", "error")

    def __init__(self) -> None:
        self.conn: _Connection | None = None
        self.lock = asyncio.Lock()  # one connect attempt at a time
        self.retry_at = 0.0  # loop time before which a failed connect is not retried
        self.error: Exception | None = None


class ValkeyMux:
    def __init__(self, host: str = "localhost", port: int = 6379, *, password: str = "", db: int = 0,
                 timeout: float = 1.0, connections: int = 1, max_pending: int = 4096, backoff: float = 0.25) -> None:
        self.host, self.port, self.password, self.db = host, port, password, db
        self.timeout = timeout
        self.max_pending = max_pending
        self.backoff = backoff
        self._slots = [_Slot() for _ in range(connections)]
        self._turn = 0
        self._closed = False

    @classmethod
    def from_config(cls, redis: Any) -> "ValkeyMux":
        return cls(redis.host, redis.port, password=redis.password, db=redis.db,
                   timeout=redis.timeout, connections=redis.connections)

    # ------------------------------------------------------------------ commands

    def execute(self, *args: Any) -> Awaitable[Any]:
        return self._call(pack(args))

    async def execute_many(self, commands: Iterable[Sequence[Any]]) -> list[Any]:
        """Several commands in one write (not a transaction); raises the first error reply."""
        payloads = [pack(c) for c in commands]
        return await (await self._connection()).call_many(payloads)

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
        conn = self._slots[0].conn if len(self._slots) == 1 else None
        if conn is None or conn.error is not None:
            conn = await self._connection()
        return await conn.send_one(payload)

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
            loop = asyncio.get_running_loop()
            if loop.time() < slot.retry_at:
                raise errors.ConnectionError(f"{slot.error} (not retried for {self.backoff}s)")
            try:
                slot.conn = await self._open(loop)
            except errors.ValkeyError as exc:
                slot.retry_at, slot.error = loop.time() + self.backoff, exc
                raise
            return slot.conn

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        where = f"{self.host}:{self.port}"
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(loop, self.timeout, self.max_pending), self.host, self.port),
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
        return conn

    async def aclose(self) -> None:
        """Fail what is still pending and close every connection (the worker's shutdown)."""
        self._closed = True
        for slot in self._slots:
            conn, slot.conn = slot.conn, None
            if conn is not None:
                conn.fail(errors.ConnectionError("Valkey client is closed"))
                await conn.lost
