"""The per-worker hub: publish through Valkey, deliver to this worker's subscribers.

Fan-out. Every message goes out on ONE Valkey pub/sub channel (`{prefix}rt`), and every
worker of every instance holds ONE subscription to it (its own connection), whatever the
number of its sockets. The worker routes each message to its local subscribers by routing
key (a dict lookup); a message nobody here wants costs one lookup. (Per-channel SUBSCRIBEs
would send each worker only what it needs, at the price of subscribe/unsubscribe traffic on
every socket change and a gap to close on each; one firehose keeps resume gap-free and is
cheap at this scale. Revisit past tens of instances.)

Publishing is one script call: Valkey assigns the id (see runtime.realtime.message), appends
the message to the channel's stream (its resume window: `realtime.history_window`, at most
`history_max` entries) and PUBLISHes it, atomically, so the stream order, the id order and
the pub/sub order are the same order.

Resume (`since`). A subscriber joining with `since` is attached first with its live messages
held back, then the channels' streams are read after `since`, then both are merged by id and
delivered: nothing between the read and the attach is lost, nothing is delivered twice.
A worker whose feed was lost reads every locally subscribed channel's stream after the last id
it saw when the feed comes back, so a Valkey blip loses nothing either (within the window).

Subscribers implement `push(message)`; it must not block (queue and return).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import datetime, UTC
from typing import TYPE_CHECKING, Any, Iterable

import orjson
from valkey.asyncio import Valkey

from runtime.valkey_feed import follow
from runtime.realtime import channels
from runtime.realtime.message import MESSAGE_ID, Message, order

if TYPE_CHECKING:
    from runtime.auth.principal import Principal
    from runtime.rbac import Policy

log = logging.getLogger("gateway.realtime")

# KEYS: stream, sequence counter, clock.  ARGV: fan-out channel, routing key, message head
# (its JSON up to the id), window ms, max entries, key lifetime ms.
_PUBLISH = """
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
if ms < last then ms = last else redis.call('SET', KEYS[3], ms) end
local seq = redis.call('INCR', KEYS[2])
local id = ms .. '-' .. seq
local text = ARGV[3] .. ',"message_id":"' .. id .. '"}'
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], id, 'm', text)
redis.call('XTRIM', KEYS[1], 'MINID', '~', ms - tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. '\\n' .. id .. '\\n' .. text)
return id
"""


class ChannelForbidden(channels.ChannelError):
    """The principal may not subscribe to (or publish on) this channel."""

    def __init__(self, channel: str) -> None:
        super().__init__(f"not allowed on channel {channel!r}")
        self.channel = channel


class Subscriber:
    """What the hub delivers to. `deliver` holds messages back while a resume is running."""

    __slots__ = ("_resuming",)

    def __init__(self) -> None:
        self._resuming: dict[str, list[Message]] | None = None

    def deliver(self, message: Message) -> None:
        resuming = self._resuming
        if resuming is not None:
            held = resuming.get(message.key)
            if held is not None:
                held.append(message)
                return
        self.push(message)

    def push(self, message: Message) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class Subscription(Subscriber):
    """A local consumer's bounded queue of messages, read as an async iterator.

        async with hub.listen(principal, ["notifications:u-1", "org:o-1"]) as sub:
            async for message in sub:        # runtime.realtime.Message
                ...message.as_dict()...

    Bounded: past `maxsize` waiting messages the OLDEST are dropped and counted in
    `dropped` (a consumer that cares can tell its client). Iteration ends after `close()`.
    """

    __slots__ = ("hub", "principal", "keys", "since", "maxsize", "dropped", "_queue", "_waiter", "_closed")

    def __init__(self, hub: "Hub", principal: "Principal", keys: dict[str, str], since: str | None, maxsize: int):
        super().__init__()
        self.hub, self.principal, self.keys, self.since, self.maxsize = hub, principal, keys, since, maxsize
        self.dropped = 0
        self._queue: deque[Message] = deque()
        self._waiter: asyncio.Future | None = None
        self._closed = False

    @property
    def channels(self) -> list[str]:
        return list(self.keys.values())

    async def start(self) -> "Subscription":
        await self.hub.join(self, list(self.keys), self.since)
        return self

    async def __aenter__(self) -> "Subscription":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def push(self, message: Message) -> None:
        if self._closed:
            return
        if len(self._queue) >= self.maxsize:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(message)
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> Message | None:
        return self._queue.popleft() if self._queue else None

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Message:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._queue.popleft()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for key in self.keys:
                self.hub.detach(self, key)
            self._wake()


class Hub:
    def __init__(self, valkey: Valkey, prefix: str, settings: Any, policy: "Policy", commands: Any = None) -> None:
        """`valkey`: a valkey-py client (the subscription's connection settings, resume reads);
        `commands`: what publishes run on, the worker's multiplexed client
        (runtime.valkey_mux) in the gateway so that a burst of publishes never waits for a
        pool slot; valkey-py when not given."""
        self.valkey = valkey
        self.settings = settings
        self.policy = policy
        self.fanout = prefix + "rt"
        # One hash tag: the publish script touches a channel's log and the shared sequence and
        # clock together, so in a cluster they must share a slot (message ids stay one order).
        self._log_prefix = prefix + "{rt}:log:"
        self._seq_key = prefix + "{rt}:seq"
        self._clock_key = prefix + "{rt}:clock"
        self._script = (commands or valkey).register_script(_PUBLISH)
        self._routes: dict[str, set[Subscriber]] = {}
        self._last_id: str | None = None  # the newest message this worker has seen
        self._high = (0, 0)  # its order: live messages at or below it were delivered already
        self._task: asyncio.Task | None = None
        self.ready = asyncio.Event()  # made again in start(), on the running loop
        self.delivered = 0  # messages handed to local subscribers (for tests and /ready)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        from runtime import realtime

        self.ready = asyncio.Event()
        realtime._set_hub(self)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow())

    async def close(self) -> None:
        from runtime import realtime

        realtime._set_hub(None, self)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # Bounded: valkey-py can swallow a cancel that lands mid-connect and keep waiting;
            # a worker must still stop.
            await asyncio.wait({task}, timeout=2.0)

    @property
    def subscribed(self) -> bool:
        """The worker's fan-out subscription is confirmed (messages published now arrive)."""
        return self.ready.is_set()

    # -- access control --------------------------------------------------------------------

    def can_subscribe(self, principal: "Principal", channel: str) -> bool:
        return channels.can_subscribe(principal, channel, self.policy, self.settings.events_permission)

    def can_publish(self, principal: "Principal", channel: str) -> bool:
        s = self.settings
        return channels.can_publish(principal, channel, self.policy, s.send_permission, s.broadcast_permission)

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, channel: str, data: Any, *, sender: str | None = None,
                      organization: str | None = None) -> Message:
        """Publish to every subscriber of `channel` on every instance; the Message as sent.

        No access check here (the caller decides; the REST endpoint checks `can_publish`).
        `organization` is required for role: and events: channels (they are per organization).
        Raises channels.ChannelError for a malformed channel, valkey errors when Valkey is down.
        """
        key = channels.routing_key(channel, organization)
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        head = orjson.dumps({"type": "message", "channel": channel, "data": data, "timestamp": stamp,
                             "user_id": sender})[:-1]
        s = self.settings
        window_ms = max(1, int(s.history_window * 1000))
        message_id = await self._script(
            keys=[self._log_prefix + key, self._seq_key, self._clock_key],
            args=[self.fanout, key, head, window_ms, s.history_max, 2 * window_ms],
        )
        message_id = message_id.decode() if isinstance(message_id, bytes) else str(message_id)
        return Message(key, message_id, head.decode() + f',"message_id":"{message_id}"}}')

    async def history(self, keys: Iterable[str], since: str) -> list[Message]:
        """Messages after `since` on each routing key, merged in id order (oldest first)."""
        if not isinstance(since, str) or not MESSAGE_ID.fullmatch(since):
            raise ValueError(f"since: {since!r} is not a message id")
        keys = list(keys)
        if not keys:
            return []
        async with self.valkey.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.xrange(self._log_prefix + key, min="(" + since, max="+", count=self.settings.history_max)
            answers = await pipe.execute()
        found = [Message(key, mid.decode(), fields[b"m"].decode())
                 for key, entries in zip(keys, answers) for mid, fields in entries]
        found.sort(key=lambda m: m.order)
        return found

    # -- local subscribers -----------------------------------------------------------------

    def attach(self, subscriber: Subscriber, key: str) -> None:
        self._routes.setdefault(key, set()).add(subscriber)

    def detach(self, subscriber: Subscriber, key: str) -> None:
        subs = self._routes.get(key)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del self._routes[key]

    def subscriber_count(self, key: str) -> int:
        return len(self._routes.get(key, ()))

    async def join(self, subscriber: Subscriber, keys: list[str], since: str | None = None) -> None:
        """Attach `subscriber` to `keys`; with `since`, first deliver what it missed, in order,
        exactly once (module docstring)."""
        if since is None:
            for key in keys:
                self.attach(subscriber, key)
            return
        if not isinstance(since, str) or not MESSAGE_ID.fullmatch(since):
            raise ValueError(f"since: {since!r} is not a message id")
        if subscriber._resuming is None:
            subscriber._resuming = {}
        for key in keys:
            subscriber._resuming[key] = []
            self.attach(subscriber, key)
        missed: list[Message] = []
        try:
            missed = await self.history(keys, since)
        finally:
            held: list[Message] = []
            for key in keys:
                held += subscriber._resuming.pop(key, [])
            if not subscriber._resuming:
                subscriber._resuming = None
            last = order(since)
            for message in sorted(missed + held, key=lambda m: m.order):
                if message.order > last:  # sorted: this also drops the copies read twice
                    last = message.order
                    subscriber.push(message)

    def listen(self, principal: "Principal", channel_names: Iterable[str], *, since: str | None = None,
               maxsize: int = 256) -> Subscription:
        """A bounded, async-iterable Subscription to `channel_names` for a local consumer
        (e.g. GraphQL subscriptions). Raises ChannelForbidden for a channel the principal may
        not subscribe to; start it with `async with` (or `await sub.start()`)."""
        keys: dict[str, str] = {}
        for name in channel_names:
            if not self.can_subscribe(principal, name):
                raise ChannelForbidden(name)
            keys[channels.routing_key(name, principal.organization_id)] = name
        return Subscription(self, principal, keys, since, maxsize)

    def _dispatch(self, message: Message) -> None:
        if message.order <= self._high:
            return  # already delivered (read from a stream after a feed loss)
        self._high, self._last_id = message.order, message.message_id
        subs = self._routes.get(message.key)
        if subs:
            for sub in tuple(subs):
                sub.deliver(message)
            self.delivered += len(subs)

    # -- the fan-out feed ------------------------------------------------------------------

    async def _follow(self) -> None:
        """Hold the worker's one subscription; on loss, resubscribe and read what was missed."""
        await follow(self.valkey, self.fanout, self._listen, live=self.ready.is_set, lost=self.ready.clear,
                      what="realtime feed")

    async def _listen(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        last_ping = last_heard = loop.time()
        heartbeat = 5.0
        while True:
            message = await pubsub.get_message(timeout=1.0)
            now = loop.time()
            if message is not None:
                last_heard = now
                kind = message["type"]
                if kind == "message":
                    self._receive(message["data"])
                elif kind == "subscribe":
                    if self._last_id is not None and self._routes:
                        await self._catch_up()
                    self.ready.set()
            if now - last_ping >= heartbeat:
                if now - last_heard > 2 * heartbeat:
                    raise ConnectionError("realtime feed silent: no answer to PING")
                await pubsub.ping()
                last_ping = now

    def _receive(self, payload: bytes) -> None:
        try:
            key, message_id, text = payload.decode().split("\n", 2)
            message = Message(key, message_id, text)
        except ValueError:
            log.warning("malformed realtime message ignored")
            return
        self._dispatch(message)

    async def _catch_up(self) -> None:
        """After a lost feed: what every locally subscribed channel got since the last id seen."""
        assert self._last_id is not None
        for message in await self.history(list(self._routes), self._last_id):
            self._dispatch(message)
