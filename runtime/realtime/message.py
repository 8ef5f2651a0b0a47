"""One realtime message, encoded once and shared by every socket and consumer it reaches.

On the wire (and in each channel's resume window in Valkey) a message is the JSON text

    {"type": "message", "channel": "org:o-1", "data": {...}, "timestamp": "2026-...Z",
     "user_id": "<sender or null>", "message_id": "1764460000123-42"}

`message_id` is `<milliseconds>-<sequence>`: Valkey assigns both in the publish script, the
sequence from one counter for every channel and the milliseconds never going backwards, so
comparing ids as pairs of numbers (`order`) orders all messages, across channels, the way they were
published. It is also the message's id in the channel's Valkey stream, which is what makes
`since: <message_id>` a plain XRANGE.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

MESSAGE_ID = re.compile(r"^\d{1,15}-\d{1,19}$")


def order(message_id: str) -> tuple[int, int]:
    """What orders ids: (milliseconds, sequence). The sequence alone would do while Valkey
    keeps its data; after a Valkey restart without persistence the counter starts again at 1,
    and the milliseconds (never going backwards) keep later messages later."""
    ms, _, seq = message_id.partition("-")
    return int(ms), int(seq)


class Message:
    """A published message. `text` is the exact frame sockets receive; `key` is the routing
    key the hub delivers on (the channel, scoped by organization where the channel name is
    not: see runtime.realtime.channels)."""

    __slots__ = ("key", "message_id", "order", "text", "_doc")

    def __init__(self, key: str, message_id: str, text: str) -> None:
        self.key = key
        self.message_id = message_id
        self.order = order(message_id)
        self.text = text
        self._doc: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The message as a dict ({type, channel, data, timestamp, user_id, message_id});
        parsed once, on first use: sockets only ever need `text`. Do not mutate it."""
        if self._doc is None:
            self._doc = orjson.loads(self.text)
        return self._doc

    @property
    def channel(self) -> str:
        return self.as_dict()["channel"]

    @property
    def data(self) -> Any:
        return self.as_dict()["data"]

    @property
    def timestamp(self) -> str:
        return self.as_dict()["timestamp"]

    @property
    def user_id(self) -> str | None:
        return self.as_dict()["user_id"]

    def __repr__(self) -> str:
        return f"Message({self.key!r}, {self.message_id!r})"
