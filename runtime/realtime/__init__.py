"""Realtime messages: publish from anywhere, deliver to every socket and local consumer.

The stable API (other parts of the gateway build on it; keep it stable):

    from runtime import realtime

    # (a) publish, from any handler. Either the module function (the worker's hub)...
    message = await realtime.publish("org:o-1", {"event": "user.registered", ...}, sender=user_id)
    # ...or through the request Context, which fills `sender` and `organization` from the
    # signed-in caller:
    message = await ctx.publish("role:admin", {...})
    # -> runtime.realtime.Message: .message_id .channel .data .timestamp .user_id .text .as_dict()
    # role: and events: channels are per organization: the module function needs
    # organization=...; ctx.publish passes the caller's.

    # (b) consume in this worker: a bounded async iterator over a set of channels.
    if realtime.can_subscribe(principal, "events:crm.customer.created"): ...
    async with realtime.hub().listen(principal, ["notifications:u-1", "system:broadcast"],
                                     since=None, maxsize=256) as subscription:
        async for message in subscription:
            ...message.as_dict()...     # {type, channel, data, timestamp, user_id, message_id}
    # listen() raises realtime.ChannelForbidden for a channel can_subscribe() refuses;
    # past `maxsize` waiting messages the oldest are dropped (subscription.dropped counts them);
    # since=<message_id> first delivers what was missed on those channels, in order, once.

One hub per worker process (runtime.resources builds it in the ASGI lifespan); `hub()` is it.
The WebSocket endpoint (`realtime.path`, /ws) is runtime/realtime/socket.py, the REST publish
endpoint handlers/realtime/notify.py. How fan-out and resume work: runtime/realtime/hub.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.realtime.channels import BROADCAST, ChannelError
from runtime.realtime.hub import ChannelForbidden, Hub, Subscription
from runtime.realtime.message import Message

if TYPE_CHECKING:
    from runtime.auth.principal import Principal

__all__ = ["publish", "can_subscribe", "can_publish", "hub", "Hub", "Message", "Subscription",
           "ChannelError", "ChannelForbidden", "BROADCAST"]

_hub: Hub | None = None


def _set_hub(new: Hub | None, old: Hub | None = None) -> None:
    global _hub
    if new is not None or _hub is old:
        _hub = new


def hub() -> Hub:
    """This worker's hub; RuntimeError outside a started gateway worker."""
    if _hub is None:
        raise RuntimeError("no realtime hub: the gateway's lifespan has not started in this process")
    return _hub


async def publish(channel: str, data: Any, *, sender: str | None = None, organization: str | None = None) -> Message:
    """Publish `data` on `channel` to every subscriber on every instance; the Message sent."""
    return await hub().publish(channel, data, sender=sender, organization=organization)


def can_subscribe(principal: "Principal", channel: str) -> bool:
    """The channel ACL (runtime/realtime/channels.py), with this worker's policy."""
    return hub().can_subscribe(principal, channel)


def can_publish(principal: "Principal", channel: str) -> bool:
    return hub().can_publish(principal, channel)
