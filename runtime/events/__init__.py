"""Business events to Kafka, in one call from any handler:

    ctx.events.emit("erp.crm.customer.created", subject=customer["id"], data=customer)

- `type`: `erp.<domain>.<what>[...]`, lowercase hyphenated words; the domain picks the topic
  (`user`, `auth`/`security`, `gateway`/`system`, `error`, anything else: api-events); see
  runtime.events.envelope. A malformed type raises ValueError (a bug, caught by any test).
- `subject`: the entity the event is about (its id); it is also the Kafka key, so events of
  one entity stay in order. `key=` overrides the key when the order must follow something else.
- `data`: anything orjson serializes (dicts of str/int/bool/None, lists, ...).
- Returns the CloudEvent `id`, or None when events are off (`kafka.enabled: false`).

The request id (header `x-request-id`), the trace context (`traceparent`/`tracestate`
headers: the current OpenTelemetry span, else the caller's `traceparent`) and the caller's
organization and user (CloudEvents extensions `organizationid`, `actorid`) ride along.
`emit` never blocks and never fails because of the broker: the event goes to librdkafka's
bounded queue, or to the durable spool while the broker is away (runtime.events.publisher).

Outside a request (a background task, a circuit breaker): `resources.events.emit(type,
subject=..., data=..., request_id=None)` with the same meaning; `resources.events` is None
when events are off. `resources.events.subscribe(fn)` calls `fn(event)` for every event the
worker emits (for realtime fan-out); `resources.events.stats()` has the counters (emitted,
produced, spooled, replayed, retried, dead_lettered, dropped, queue_full) and gauges
(spool_pending, spool_bytes, queued, broker_up) for metrics.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from runtime.events.envelope import ALL_TOPICS, topic_for
from runtime.events.publisher import EventPublisher, worker_spool

if TYPE_CHECKING:
    from runtime.context import Context

__all__ = ["BoundEvents", "EventPublisher", "open_publisher", "ALL_TOPICS", "topic_for"]

_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


class BoundEvents:
    """`ctx.events`: emit with the request's id, trace context, organization and user."""

    __slots__ = ("_publisher", "_ctx")

    def __init__(self, publisher: EventPublisher | None, ctx: "Context") -> None:
        self._publisher = publisher
        self._ctx = ctx

    def emit(self, type: str, *, subject: str, data: Any, key: str | None = None) -> str | None:
        if self._publisher is None:
            topic_for("erp", type)  # a malformed type is a bug even with events off
            return None
        ctx = self._ctx
        principal = ctx.principal
        return self._publisher.emit(
            type, subject=subject, data=data, key=key, request_id=ctx.request_id, trace=trace_context(ctx),
            organizationid=principal.organization_id if principal else "",
            actorid=principal.user_id if principal else "",
        )


def trace_context(ctx: "Context") -> tuple[tuple[str, str], ...]:
    from runtime.backends.client import trace_metadata

    current = trace_metadata()
    if current:
        return current
    incoming = ctx.traceparent
    if incoming and _TRACEPARENT.fullmatch(incoming.strip().lower()):
        return (("traceparent", incoming.strip().lower()),)
    return ()


def open_publisher(config: Any) -> EventPublisher | None:
    """This worker's publisher (not started), or None when events are off."""
    kafka = config.kafka
    if not kafka.enabled:
        return None
    return EventPublisher(kafka, spool=worker_spool(kafka), source=kafka.source)
