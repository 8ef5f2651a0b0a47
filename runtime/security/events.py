"""Security events: one function to report one, one to receive them all.

Code that notices something an operator must know about (an account locked by failed
sign-ins, ...) calls `security_event("login.account_locked", account=..., client_ip=...)`.
Today every event is a log line on `gateway.security`; a publisher (Kafka, once events
exist) registers itself with `add_sink(fn)` and receives each event as a dict, without any
reporting code changing. A sink must not block (it runs on the event loop) and its errors are
logged, never raised into the request that reported the event.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

log = logging.getLogger("gateway.security")

Sink = Callable[[dict[str, Any]], None]
_sinks: list[Sink] = []


def add_sink(sink: Sink) -> Callable[[], None]:
    """Receive every security event from now on; returns the function that stops it."""
    _sinks.append(sink)
    return lambda: _sinks.remove(sink)


def security_event(kind: str, **fields: Any) -> dict[str, Any]:
    """Report one event: `kind` is dotted and stable (`login.account_locked`); `fields` say
    who and what (ids and hashes, never credentials). Returns the event as sinks see it."""
    event = {"type": kind, "time": time.time(), **fields}
    log.warning(kind, extra={"security_event": kind, **fields})
    for sink in tuple(_sinks):
        try:
            sink(event)
        except Exception:
            log.exception("security event sink failed", extra={"security_event": kind})
    return event
