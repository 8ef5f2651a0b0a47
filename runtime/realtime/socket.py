"""The WebSocket endpoint (`realtime.path`, /ws): auth, protocol, liveness, back-pressure.

Raw ASGI, not a Falcon responder: a socket lives for hours, so what it costs in memory is
paid ten thousand times over. Here a socket is one `Connection` (slots, a deque) and the
ASGI call's own coroutine; no request object, no receive-buffer task (Falcon's WebSocket
keeps one per socket). It also lets a refused upgrade answer a real HTTP 401/403 with the
error envelope through the ASGI `websocket.http.response` extension (Granian has it).
Authentication reuses the HTTP pipeline's verifier and revocation list, so a token means
the same thing on both.

Protocol (README, "Realtime"): client frames are JSON objects with a `type`:
`auth {token, since?}`, `subscribe {channel, since?}`, `unsubscribe {channel}`, `ping`,
`pong`. Server frames: `connected`, `message` (runtime.realtime.message), `ack`, `error
{code, message, channel?}`, `ping`, `pong`. Close codes: 4001 unauthenticated, 4003
forbidden (origin), 4029 rate limited / too many sockets, 4408 no pong in time, 4500
internal, 1001 going away (the instance stops: reconnect elsewhere and resume), 1009 message
too big, 1013 too slow (the send queue overflowed: reconnect and resume with `since`).

Back-pressure: each socket has a bounded queue (`realtime.send_queue`) drained by a task
that exists only while there is something to send; fan-out only appends to queues, so a
socket that stops reading fills its own queue and is dropped (1013) without anyone else
waiting for it.

Liveness: one ticker per worker (not a task per socket) sends `{"type": "ping"}` to sockets
silent for `ping_period`, closes those that stay silent `pong_timeout` more, closes sockets
whose token expired or was revoked, and renews the per-user connection leases in Valkey.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson
from valkey.exceptions import ValkeyError

from runtime.errors import ApiError, Forbidden, Unauthenticated
from runtime.auth.tokens import bearer_token
from runtime.realtime import channels
from runtime.realtime.hub import Subscriber
from runtime.realtime.message import MESSAGE_ID, Message
from runtime.request_id import request_id

if TYPE_CHECKING:
    from runtime.auth.principal import Principal
    from runtime.resources import Resources

log = logging.getLogger("gateway.realtime")

UNAUTHENTICATED, FORBIDDEN, RATE_LIMITED, PONG_TIMEOUT, INTERNAL = 4001, 4003, 4029, 4408, 4500
GOING_AWAY, TOO_BIG, TOO_SLOW = 1001, 1009, 1013
BAD_MESSAGE = 4400  # in `error` frames only: the frame was not understood; the socket stays
MAX_SUBSCRIPTIONS = 100  # channels per socket, beyond the two it starts with

# KEYS: the user's lease set.  ARGV: cap, connection id, lease ms.  Valkey's clock, so every
# instance agrees on what has expired. 1: admitted, 0: at the cap.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
_RENEW = """
local t = redis.call('TIME')
local until_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', until_ms, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

_ids = itertools.count(1)
_instance = f"{os.getpid():x}-{os.urandom(3).hex()}"


def _frame(doc: dict) -> str:
    return orjson.dumps(doc).decode()


class Closing(Exception):
    """Raised inside a socket's loop to close it with `code`."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class Connection(Subscriber):
    __slots__ = ("id", "endpoint", "principal", "send", "queue", "keys", "flusher", "task", "close_code",
                 "close_reason", "last_heard", "ping_sent", "tokens", "tokens_at")

    def __init__(self, endpoint: "RealtimeEndpoint", principal: "Principal", send: Any) -> None:
        super().__init__()
        self.id = f"{_instance}-{next(_ids)}"
        self.endpoint = endpoint
        self.principal = principal
        self.send = send
        self.queue: deque[str] | None = None  # made when there is something to send: idle sockets are many
        self.keys: dict[str, str] = {}  # routing key -> channel name
        self.flusher: asyncio.Task | None = None
        self.task: asyncio.Task | None = None  # the ASGI call reading this socket
        self.close_code: int | None = None
        self.close_reason = ""
        self.last_heard = time.monotonic()
        self.ping_sent = 0.0
        self.tokens = float(endpoint.settings.message_burst)
        self.tokens_at = self.last_heard

    # -- sending (never blocks the caller) ----------------------------------------------------

    def push(self, message: Message) -> None:
        self.enqueue(message.text)

    def enqueue(self, text: str) -> None:
        if self.close_code is not None:
            return
        queue = self.queue
        if queue is None:
            queue = self.queue = deque()
        elif len(queue) >= self.endpoint.settings.send_queue:
            self.close(TOO_SLOW, "too slow: send queue full; reconnect and resume with since")
            return
        queue.append(text)
        if self.flusher is None:
            self.flusher = asyncio.get_running_loop().create_task(self._flush())

    def reply(self, doc: dict) -> None:
        self.enqueue(_frame(doc))

    async def _flush(self) -> None:
        send, queue = self.send, self.queue
        assert queue is not None  # the flusher starts only once there is a queue
        try:
            while queue:
                await send({"type": "websocket.send", "text": queue.popleft()})
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer went away mid-send: the read loop sees the disconnect
            queue.clear()
        finally:
            self.flusher = None
            if not queue and self.queue is queue:
                self.queue = None

    # -- closing from anywhere ------------------------------------------------------------------

    def close(self, code: int, reason: str = "") -> None:
        """Close with `code` as soon as possible: stops the socket's read loop, which sends
        the close frame. Safe to call from the fan-out, the ticker or the shutdown."""
        if self.close_code is not None:
            return
        self.close_code, self.close_reason = code, reason
        if self.queue is not None:
            self.queue.clear()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    # -- inbound rate ------------------------------------------------------------------------

    def take_token(self, now: float) -> bool:
        s = self.endpoint.settings
        self.tokens = min(float(s.message_burst), self.tokens + (now - self.tokens_at) * s.message_rate)
        self.tokens_at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class RealtimeEndpoint:
    """The ASGI callable for WebSocket scopes on `realtime.path`."""

    def __init__(self, config: Any, state: Any) -> None:
        self.config = config
        self.settings = config.realtime
        self.state = state  # state.resources: the worker's Resources, set by the lifespan
        self.reload_origins(config)
        self.connections: set[Connection] = set()
        self.lease_ms = int(max(3 * self.settings.ping_period, 30.0) * 1000)
        self._ticker: asyncio.Task | None = None
        self._acquire: Any = None  # scripts registered in start(), on the request-path client
        self._renew: Any = None
        self._warned_at = -1e9
        self.stopping = False

    def reload_origins(self, config: Any) -> None:
        """The browser origins allowed to open a socket (again after a configuration reload)."""
        origins = config.realtime.allowed_origins or config.cors.allowed_origins
        self.any_origin, self.origins = "*" in origins, frozenset(origins)

    # -- lifecycle (called by the lifespan) --------------------------------------------------

    def start(self, resources: "Resources") -> None:
        # The multiplexed client: a reconnect storm (an instance went away, all its clients
        # come here) must not queue for valkey-py's pool slots.
        self.commands = resources.valkey_mux
        self._acquire = self.commands.register_script(_ACQUIRE)
        self._renew = self.commands.register_script(_RENEW)
        self.lease_prefix = resources.config.redis.key_prefix + "rt:conns:"
        self.stopping = False
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def close_all(self, code: int = GOING_AWAY, reason: str = "server shutting down", wait: float = 5.0) -> None:
        """Close every socket with `code` (1001 on shutdown) and wait for them to finish."""
        self.stopping = True
        for conn in list(self.connections):
            conn.close(code, reason)
        deadline = time.monotonic() + wait
        while self.connections and time.monotonic() < deadline:  # noqa: ASYNC110  (sockets leave one by one)
            await asyncio.sleep(0.01)
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    # -- one socket ------------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        resources = self.state.resources
        rid = request_id(_header(scope, b"x-request-id"))
        if resources is None or self.stopping:
            await _deny(scope, send, 503, None, rid, close_code=GOING_AWAY)
            return
        origin = _header(scope, b"origin")
        if origin is not None and not (self.any_origin or origin in self.origins):
            await _deny(scope, send, 403, Forbidden("This origin may not open a WebSocket"), rid, close_code=FORBIDDEN)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        since = (query.get("since") or [None])[0]
        token: str | None = None
        try:
            authorization = _header(scope, b"authorization")
            if authorization is not None:
                token = bearer_token(authorization)
            elif query.get("token"):
                token = query["token"][0]  # never logged: we log the path only, never the query
            principal = await self._authenticate(resources, token) if token is not None else None
        except ApiError as error:
            await _deny(scope, send, error.status, error, rid, close_code=UNAUTHENTICATED)
            return
        await send({"type": "websocket.accept"})
        try:
            if principal is None:
                principal, since = await self._first_message(resources, receive, since)
        except Closing as closing:
            await _close(send, closing.code, closing.reason)
            return
        conn = Connection(self, principal, send)
        conn.task = asyncio.current_task()
        try:
            admitted = await self._admit(conn)
        except Exception:
            log.exception("realtime admission failed")
            admitted = None
        if not admitted:
            code, why = (RATE_LIMITED, "too many connections for this user") if admitted is False else \
                (INTERNAL, "internal error")
            await _close(send, code, why)
            return
        self.connections.add(conn)
        try:
            await self._serve(conn, resources, receive, since)
        except asyncio.CancelledError:
            if conn.close_code is None:
                raise  # not ours: the server is cancelling the call
            if conn.task is not None:
                conn.task.uncancel()
        except Closing as closing:
            # Keep the queue: it may end with the `error` frame that explains the close.
            conn.close_code, conn.close_reason = closing.code, closing.reason
        except Exception:
            log.exception("realtime socket failed", extra={"user_id": principal.user_id})
            conn.close(INTERNAL, "internal error")
        finally:
            self.connections.discard(conn)
            hub = resources.realtime
            for key in conn.keys:
                hub.detach(conn, key)
            if conn.flusher is not None:
                if conn.queue:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(conn.flusher), 1.0)
                if conn.flusher is not None:
                    conn.flusher.cancel()
            with contextlib.suppress(Exception):
                await self.commands.execute("ZREM", self.lease_prefix + principal.user_id, conn.id)
        if conn.close_code is not None:
            await _close(send, conn.close_code, conn.close_reason)

    async def _authenticate(self, resources: "Resources", token: str) -> "Principal":
        principal = await resources.verifier.verify(token)
        if await resources.revocations.is_revoked(*principal.revocation_ids):
            raise Unauthenticated("Token has been revoked")
        return principal

    async def _first_message(self, resources: "Resources", receive: Any, since: str | None) -> tuple["Principal", str | None]:
        """Browsers cannot set headers: the first frame `{"type": "auth", "token": ...}`."""
        try:
            message = await asyncio.wait_for(receive(), self.settings.auth_timeout)
        except asyncio.TimeoutError:
            raise Closing(UNAUTHENTICATED, "authentication timeout") from None
        if message["type"] != "websocket.receive":
            raise Closing(UNAUTHENTICATED, "closed before authenticating")
        doc = _parse(message, self.settings.max_message_bytes)
        if not isinstance(doc, dict) or doc.get("type") != "auth" or not isinstance(doc.get("token"), str):
            raise Closing(UNAUTHENTICATED, 'the first message must be {"type": "auth", "token": ...}')
        try:
            principal = await self._authenticate(resources, doc["token"])
        except ApiError as error:
            raise Closing(UNAUTHENTICATED, error.message) from None
        return principal, doc.get("since", since)

    async def _admit(self, conn: Connection) -> bool:
        """The per-user cap, across every instance (a lease set per user in Valkey). With
        Valkey down, admit: refusing every socket during a cache outage is worse."""
        try:
            return bool(await self._acquire(keys=[self.lease_prefix + conn.principal.user_id],
                                            args=[self.settings.max_connections_per_user, conn.id, self.lease_ms]))
        except (ValkeyError, OSError) as exc:
            now = time.monotonic()
            if now - self._warned_at > 10.0:  # once per 10 s, not once per socket of a storm
                self._warned_at = now
                log.warning("connection cap not enforced: valkey unavailable", extra={"error": str(exc)[:200]})
            return True

    async def _serve(self, conn: Connection, resources: "Resources", receive: Any, since: str | None) -> None:
        hub, principal = resources.realtime, conn.principal
        own = {channels.routing_key(c, principal.organization_id): c for c in channels.own_channels(principal)}
        conn.keys.update(own)
        conn.reply({"type": "connected", "user_id": principal.user_id, "channels": list(own.values()),
                    "connection_id": conn.id})
        if since is not None and not (isinstance(since, str) and MESSAGE_ID.fullmatch(since)):
            conn.reply({"type": "error", "code": BAD_MESSAGE, "message": "since must be a message_id; not resuming"})
            since = None
        await hub.join(conn, list(own), since)
        max_bytes = self.settings.max_message_bytes
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            now = time.monotonic()
            conn.last_heard, conn.ping_sent = now, 0.0
            if not conn.take_token(now):
                conn.reply({"type": "error", "code": RATE_LIMITED, "message": "too many messages"})
                raise Closing(RATE_LIMITED, "too many messages")
            doc = _parse(message, max_bytes)
            if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
                conn.reply({"type": "error", "code": BAD_MESSAGE, "message": "expected a JSON object with a type"})
                continue
            await self._handle(conn, hub, doc)

    async def _handle(self, conn: Connection, hub: Any, doc: dict) -> None:
        kind = doc["type"]
        if kind == "ping":
            conn.reply({"type": "pong"})
            return
        if kind == "pong":
            return
        if kind in ("subscribe", "unsubscribe"):
            channel = doc.get("channel")
            if channel is None and isinstance(doc.get("data"), dict):
                channel = doc["data"].get("channel")  # the seed's shape
            await (self._subscribe(conn, hub, channel, doc.get("since")) if kind == "subscribe"
                   else self._unsubscribe(conn, hub, channel))
            return
        if kind == "auth":
            await self._reauth(conn, doc.get("token"))
            return
        conn.reply({"type": "error", "code": BAD_MESSAGE, "message": f"unknown message type {kind[:40]!r}"})

    async def _subscribe(self, conn: Connection, hub: Any, channel: Any, since: Any) -> None:
        principal = conn.principal
        if not isinstance(channel, str) or channels.parse(channel) is None:
            conn.reply({"type": "error", "code": BAD_MESSAGE, "channel": channel if isinstance(channel, str) else None,
                        "message": "channel must be notifications:<user>, org:<org>, role:<role>, events:<type> "
                                   "or system:broadcast"})
            return
        if not hub.can_subscribe(principal, channel):
            conn.reply({"type": "error", "code": FORBIDDEN, "channel": channel,
                        "message": "You may not subscribe to this channel"})
            return
        if since is not None and not (isinstance(since, str) and MESSAGE_ID.fullmatch(since)):
            conn.reply({"type": "error", "code": BAD_MESSAGE, "channel": channel,
                        "message": "since must be a message_id"})
            return
        key = channels.routing_key(channel, principal.organization_id)
        if key not in conn.keys and len(conn.keys) >= MAX_SUBSCRIPTIONS + 2:
            conn.reply({"type": "error", "code": RATE_LIMITED, "channel": channel,
                        "message": f"at most {MAX_SUBSCRIPTIONS} subscriptions per socket"})
            return
        already = key in conn.keys
        conn.reply({"type": "ack", "action": "subscribe", "channel": channel})
        if already:
            if since is None:
                return
            hub.detach(conn, key)  # subscribed already, but asked to replay from `since`
        conn.keys[key] = channel
        await hub.join(conn, [key], since)

    async def _unsubscribe(self, conn: Connection, hub: Any, channel: Any) -> None:
        key = None
        if isinstance(channel, str) and channels.parse(channel) is not None:
            key = channels.routing_key(channel, conn.principal.organization_id)
        if key is None or key not in conn.keys:
            conn.reply({"type": "error", "code": BAD_MESSAGE, "channel": channel if isinstance(channel, str) else None,
                        "message": "not subscribed to this channel"})
            return
        del conn.keys[key]
        hub.detach(conn, key)
        conn.reply({"type": "ack", "action": "unsubscribe", "channel": channel})

    async def _reauth(self, conn: Connection, token: Any) -> None:
        """A fresh token for the same user before the old one expires keeps the socket open."""
        resources = self.state.resources
        try:
            if not isinstance(token, str):
                raise Unauthenticated("token is required")
            principal = await self._authenticate(resources, token)
        except ApiError as error:
            conn.reply({"type": "error", "code": UNAUTHENTICATED, "message": error.message})
            return
        if principal.user_id != conn.principal.user_id:
            conn.reply({"type": "error", "code": FORBIDDEN, "message": "a socket stays with one user"})
            return
        conn.principal = principal
        conn.reply({"type": "ack", "action": "auth"})

    # -- the worker's ticker ---------------------------------------------------------------

    async def _tick(self) -> None:
        s = self.settings
        period = max(0.02, min(s.ping_period, s.pong_timeout, 5.0) / 4)
        ping = _frame({"type": "ping"})
        last_renew = time.monotonic()
        while True:
            await asyncio.sleep(period)
            try:
                now, wall = time.monotonic(), time.time()
                revocations = self.state.resources.revocations if self.state.resources else None
                for conn in list(self.connections):
                    if conn.close_code is not None:
                        continue
                    principal = conn.principal
                    if principal.expires_at + self.config.jwt.leeway < wall:
                        conn.reply({"type": "error", "code": UNAUTHENTICATED, "message": "token expired"})
                        conn.close(UNAUTHENTICATED, "token expired")
                    elif revocations is not None and revocations.synced and \
                            await revocations.is_revoked(*principal.revocation_ids):
                        conn.close(UNAUTHENTICATED, "token revoked")
                    elif conn.ping_sent and now - conn.ping_sent >= s.pong_timeout:
                        conn.close(PONG_TIMEOUT, "no pong")
                    elif not conn.ping_sent and now - conn.last_heard >= s.ping_period:
                        conn.ping_sent = now
                        conn.enqueue(ping)
                if now - last_renew >= self.lease_ms / 3000:
                    last_renew = now
                    await self._renew_leases()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("realtime ticker failed")

    async def _renew_leases(self) -> None:
        by_user: dict[str, list[str]] = {}
        for conn in self.connections:
            by_user.setdefault(conn.principal.user_id, []).append(conn.id)
        try:
            for user, ids in by_user.items():
                await self._renew(keys=[self.lease_prefix + user], args=[self.lease_ms, *ids])
        except (ValkeyError, OSError):
            pass  # leases just expire sooner; the cap is a guard, not a guarantee


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _parse(message: dict, max_bytes: int) -> Any:
    text = message.get("text")
    if text is None:
        data = message.get("bytes") or b""
        if len(data) > max_bytes:
            raise Closing(TOO_BIG, "message too big")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
    if len(text) > max_bytes or (len(text) * 4 > max_bytes and len(text.encode()) > max_bytes):
        raise Closing(TOO_BIG, "message too big")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


async def _deny(scope: dict, send: Any, status: int, error: ApiError | None, rid: str, close_code: int) -> None:
    """Refuse before the upgrade: an HTTP answer with the envelope where the server offers
    `websocket.http.response`, else accept and close with `close_code`."""
    if "websocket.http.response" in scope.get("extensions", {}):
        error = error or ApiError("The gateway is stopping")
        if error.status != status:
            error.status = status
        headers = [(b"content-type", b"application/json"), (b"x-request-id", rid.encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": orjson.dumps(error.body(rid))})
        return
    await send({"type": "websocket.accept"})
    await _close(send, close_code, error.message if error else "")


async def _close(send: Any, code: int, reason: str = "") -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(send({"type": "websocket.close", "code": code, "reason": reason[:120]}), 2.0)
