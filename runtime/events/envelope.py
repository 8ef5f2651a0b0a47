"""CloudEvents 1.0 in structured JSON mode, the topic each event type goes to, and the
record (topic, key, headers, value) that travels to Kafka or to the spool.

Types are `erp.<domain>.<what>[.<more>]`, lowercase words joined by hyphens. The domain picks
the topic under `kafka.topic_prefix`:

    user                -> <prefix>.user-events      erp.user.registered
    auth, security      -> <prefix>.auth-events      erp.auth.login.succeeded
    gateway, system     -> <prefix>.system-events    erp.gateway.breaker.opened
    error               -> <prefix>.error-events     erp.error.request.failed
    anything else       -> <prefix>.api-events       erp.crm.customer.created
    (refused for good)  -> <prefix>.dead-letter
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, UTC
from typing import Any

import orjson

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
TYPE = re.compile(r"erp(\.[a-z0-9]+(?:-[a-z0-9]+)*){2,}")
TOPICS = {
    "user": "user-events",
    "auth": "auth-events",
    "security": "auth-events",
    "gateway": "system-events",
    "system": "system-events",
    "error": "error-events",
}
API_TOPIC = "api-events"
DEAD_LETTER = "dead-letter"
ALL_TOPICS = ("user-events", "auth-events", "api-events", "error-events", "system-events", DEAD_LETTER)

# Kafka headers (structured mode: the whole event is the value; these ride beside it).
REQUEST_ID = "x-request-id"
ORIGINAL_TOPIC = "x-original-topic"  # on dead letters
DEAD_LETTER_REASON = "x-dead-letter-reason"
DELIVERY_ATTEMPTS = "x-delivery-attempts"


def topic_for(prefix: str, type: str) -> str:
    if not TYPE.fullmatch(type):
        raise ValueError(f"event type {type!r} is not erp.<domain>.<what> (lowercase, hyphenated words)")
    return f"{prefix}.{TOPICS.get(type.split('.', 2)[1], API_TOPIC)}"


def cloud_event(type: str, source: str, subject: str, data: Any, **extensions: str) -> dict[str, Any]:
    """One CloudEvent; `extensions` are lowercase alphanumeric attribute names (CloudEvents
    3.1.1), e.g. organizationid, actorid; empty ones are left out."""
    event = {
        "specversion": SPEC_VERSION,
        "id": str(uuid.uuid4()),
        "source": source,
        "type": type,
        "subject": subject,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": data,
    }
    event.update((name, value) for name, value in extensions.items() if value)
    return event


@dataclass(slots=True)
class Record:
    """What is produced: the same bytes whether sent now, spooled, replayed or dead-lettered."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    attempts: int = 0  # delivery attempts that ended in a refusal (not an outage)
    seq: int = 0  # emit order within this process
    slot: int | None = None  # replay slot when it came from the spool
    born: float = field(default_factory=time.monotonic)

    def encode(self) -> bytes:
        """Spool form: a JSON line of the metadata, then the value as is."""
        meta = orjson.dumps([self.topic, self.key.decode(), [[k, v.decode()] for k, v in self.headers], self.attempts])
        return meta + b"\n" + self.value

    @classmethod
    def decode(cls, payload: bytes) -> "Record":
        meta, _, value = payload.partition(b"\n")
        topic, key, headers, attempts = orjson.loads(meta)
        return cls(topic, key.encode(), value, [(k, v.encode()) for k, v in headers], attempts)

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode()
        return None


def make_record(topic: str, event: dict[str, Any], key: str, request_id: str | None,
                trace: tuple[tuple[str, str], ...] = ()) -> Record:
    headers = [("content-type", CONTENT_TYPE.encode())]
    if request_id:
        headers.append((REQUEST_ID, request_id.encode()))
    headers.extend((name, value.encode()) for name, value in trace)
    return Record(topic, key.encode(), orjson.dumps(event), headers)
