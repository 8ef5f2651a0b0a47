"""One timestamp format for every service: RFC 3339, UTC, exactly three fractional digits.

`2026-11-30T00:45:03.120Z`: what JavaScript's `Date.toISOString()` writes and reads, so a
frontend compares and sorts them as strings. protobuf's own JSON mapping writes 0, 3, 6 or 9
digits depending on the value, so `runtime.protobuf.to_dict` formats Timestamps here instead,
and the emulated backends store milliseconds (`now()`), so what they keep is what clients see.
"""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp

RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"


def millis(rfc3339: str) -> str:
    """protobuf's JSON form of a Timestamp (no fraction, or 3, 6 or 9 digits, always UTC
    `Z`, years 0001-9999) at exactly three fractional digits, truncated."""
    if len(rfc3339) == 24:
        return rfc3339
    if len(rfc3339) == 20:
        return rfc3339[:19] + ".000Z"
    return rfc3339[:23] + "Z"


def format_seconds(seconds: int, nanos: int = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos // 1_000_000:03d}Z"


def format_timestamp(ts: Timestamp) -> str:
    return format_seconds(ts.seconds, ts.nanos)


def timestamp(epoch_seconds: float) -> Timestamp:
    """A Timestamp at millisecond precision."""
    millis = int(epoch_seconds * 1000)
    return Timestamp(seconds=millis // 1000, nanos=(millis % 1000) * 1_000_000)


def now() -> Timestamp:
    return timestamp(time.time())
