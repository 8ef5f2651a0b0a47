"""Prometheus metrics of the gateway, counted in every Granian worker and served summed.

Granian runs N worker processes and a scrape of /metrics reaches one of them, so each worker
writes its values into memory-mapped files (prometheus-client's multiprocess mode) and the
worker that answers the scrape reads all of them. The directory is

- `PROMETHEUS_MULTIPROC_DIR` when set (the operator empties it before start-up);
- else, in a worker process (multiprocessing child, as Granian's are), a directory named after
  the parent process and its start time, so one Granian run never sees another's counts;
  directories of Granian processes that are gone are removed;
- else (one process: `gw invoke`, tests building the app in-process) plain in-memory values.

The mode is decided when this module is first imported. Domain discovery imports it in
Granian's master too (before the workers fork), so `runtime.serve` sets the directory for its
workers first (`multiprocess_dir.server_directory`).

API for the rest of the runtime (and for handlers of other features): the module-level
metric objects below. Increment them directly; labels are fixed and low-cardinality (never
ids or raw paths). For example:

    from runtime.observability import metrics
    metrics.WEBSOCKET_CONNECTIONS.inc()            # a socket was accepted (.dec() when it closes)
    metrics.WEBSOCKET_MESSAGES.labels("out").inc() # a message was sent ("in": received)
    metrics.EVENTS.labels("crm.customer.created", "produced").inc()
        # outcome: produced | retried | spooled | dead_lettered | replayed
    metrics.EVENTS_SPOOL_DEPTH.set(n)              # events waiting in this worker's spool
"""

from __future__ import annotations

import collections
import glob
import multiprocessing
import os
from typing import Any, Callable, Iterable

from runtime.observability.multiprocess_dir import server_directory

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worker_dir() -> str | None:
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        return None
    return server_directory(parent.pid)


def _choose_directory() -> str | None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or _worker_dir()
    if path:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path  # read by prometheus_client at import
    return path


MULTIPROCESS_DIR = _choose_directory()

from prometheus_client import (  # noqa: E402  (after the directory is chosen)
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from runtime.observability.mmap_values import MmapValue, reopen_after_fork  # noqa: E402

if MULTIPROCESS_DIR:
    values.ValueClass = MmapValue  # even if prometheus_client was imported first

CONTENT_TYPE = CONTENT_TYPE_LATEST
REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds; from 1 ms (a cached read) to 10 s (a backend at its deadline).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
    return Counter(name, doc, tuple(labels), registry=REGISTRY)


def _gauge(name: str, doc: str, labels: Iterable[str] = (), mode: str = "livesum") -> Gauge:
    # live*: only live workers count (their files go when they stop); sum, or the worst worker.
    return Gauge(name, doc, tuple(labels), registry=REGISTRY, multiprocess_mode=mode)  # type: ignore[arg-type]


def _histogram(name: str, doc: str, labels: Iterable[str]) -> Histogram:
    return Histogram(name, doc, tuple(labels), registry=REGISTRY, buckets=LATENCY_BUCKETS)


# HTTP (runtime.middleware). `route` is the route template ("/api/v1/crm/customers/{id}"),
# "(unmatched)" for no route.
HTTP_REQUESTS = _counter("gateway_http_requests_total", "HTTP requests answered.", ("route", "method", "status"))
HTTP_DURATION = _histogram("gateway_http_request_duration_seconds", "Time to answer an HTTP request.",
                           ("route", "method"))
HTTP_IN_FLIGHT = _gauge("gateway_http_requests_in_flight", "HTTP requests being answered now.")
WORKERS = _gauge("gateway_workers", "Gateway worker processes alive.")

# Backends (runtime.backends.client). `code` is the gRPC status name of the call's outcome,
# OK included, or CIRCUIT_OPEN when the breaker refused it without calling.
BACKEND_CALLS = _counter("gateway_backend_calls_total", "gRPC calls to backends, by outcome.",
                         ("service", "method", "code"))
BACKEND_DURATION = _histogram("gateway_backend_call_duration_seconds",
                              "gRPC call time, retries and backoff included.", ("service", "method"))
BACKEND_RETRIES = _counter("gateway_backend_retries_total", "gRPC retries, by whether the budget allowed them.",
                           ("service", "outcome"))
BREAKER_STATE = _gauge("gateway_backend_breaker_state",
                       "Circuit breaker state of the worst worker: 0 closed, 1 half-open, 2 open.",
                       ("service",), mode="livemax")
BREAKER_OPENED = _counter("gateway_backend_breaker_opened_total", "Times a breaker opened.", ("service",))
DEPENDENCY_UP = _gauge("gateway_dependency_up",
                       "Last background health check of a dependency, of the worst worker: 1 up, 0 down.",
                       ("dependency",), mode="livemin")

# Valkey-backed features.
CACHE_REQUESTS = _counter("gateway_cache_requests_total", "Cache reads: hit, miss, or bypass (Valkey down).",
                          ("policy", "result"))
RATE_LIMITED = _counter("gateway_rate_limit_rejections_total", "Requests refused by a rate limit.", ("policy",))
JWKS_REFRESHES = _counter("gateway_jwks_refreshes_total", "JWKS fetches, by outcome (success, failure).",
                          ("outcome",))

# Realtime (the WebSocket feature increments these).
WEBSOCKET_CONNECTIONS = _gauge("gateway_websocket_connections", "WebSocket connections open now.")
WEBSOCKET_MESSAGES = _counter("gateway_websocket_messages_total", "WebSocket messages, in or out.",
                              ("direction",))

# Events (the Kafka feature increments these).
EVENTS = _counter("gateway_events_total",
                  "Business events by topic (as `type`) and outcome: emitted, produced, retried, spooled, "
                  "dead_lettered, dropped.",
                  ("type", "outcome"))
EVENTS_SPOOL_DEPTH = _gauge("gateway_events_spool_depth", "Events waiting in the local spool.")

# Log shipping (runtime.observability.shipper).
LOG_RECORDS_SHIPPED = _counter("gateway_log_records_shipped_total", "Log records written to the search engine.")
LOG_RECORDS_DROPPED = _counter("gateway_log_records_dropped_total",
                               "Log records dropped: buffer full or the search engine refused them.", ("reason",))


def worker_started() -> None:
    """Once per worker, in the lifespan: count it, and forget the gauges of dead workers
    (a live-sum gauge of a worker Granian replaced would otherwise be summed forever)."""
    if MULTIPROCESS_DIR:
        for path in glob.glob(os.path.join(MULTIPROCESS_DIR, "gauge_live*_*.db")):
            pid = path.rsplit("_", 1)[-1][:-3]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                multiprocess.mark_process_dead(int(pid), MULTIPROCESS_DIR)
        reopen_after_fork()  # a worker not made by os.fork: files of its own
    WORKERS.inc()


def worker_stopped() -> None:
    WORKERS.dec()
    if MULTIPROCESS_DIR:
        multiprocess.mark_process_dead(os.getpid(), MULTIPROCESS_DIR)


def render() -> bytes:
    """The exposition of every worker's metrics, summed (blocking file reads: call in a thread)."""
    if not MULTIPROCESS_DIR:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, MULTIPROCESS_DIR)
    return generate_latest(registry)


_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# (route, method, status) -> the values one answered request updates: its counter's, and its
# latency histogram's sum, buckets and bounds. Held directly, not through the label children's
# inc() and observe(): those check on every call what is fixed here (~1 µs a request).
_request_children: dict[tuple[str, str, int], tuple[Any, Any, list, tuple]] = {}
_IN_FLIGHT = HTTP_IN_FLIGHT._value


def request_started() -> None:
    _IN_FLIGHT.inc(1)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """One answered request (runtime.middleware): out of the in-flight gauge, counted, timed."""
    _IN_FLIGHT.inc(-1)
    if method not in _METHODS:
        method = "OTHER"  # a client picks the method: keep the label set bounded
    key = (route, method, status)
    children = _request_children.get(key)
    if children is None:
        histogram = HTTP_DURATION.labels(route, method)
        children = _request_children[key] = (
            HTTP_REQUESTS.labels(route, method, str(status))._value,
            histogram._sum, histogram._buckets, tuple(histogram._upper_bounds))
    count, total, buckets, bounds = children
    count.inc(1)
    total.inc(seconds)
    for i, bound in enumerate(bounds):  # the last bound is +Inf: always found
        if seconds <= bound:
            buckets[i].inc(1)
            break


class MirroredCounter(collections.Counter):
    """A `collections.Counter` of "<label>:<label>" keys (what the cache keeps in `.stats`)
    whose increments also go to a Prometheus counter with those labels, so an object keeps
    its own counters and is exported without knowing about Prometheus."""

    def __init__(self, metric: Counter) -> None:
        super().__init__()
        self._metric = metric
        self._children: dict[str, Any] = {}  # key -> its label child's value (labels() costs ~1 µs)

    def __setitem__(self, key: str, value: int) -> None:
        delta = value - self.get(key, 0)
        super().__setitem__(key, value)
        if delta > 0:
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self._metric.labels(*key.split(":"))._value
            child.inc(delta)


def counted(fetch: Callable[..., Any], metric: Counter) -> Callable[..., Any]:
    """`fetch`, counting each call under outcome "success" or "failure" (JWKS refreshes)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fetch(*args, **kwargs)
        except BaseException:
            metric.labels("failure").inc()
            raise
        metric.labels("success").inc()
        return result

    return wrapper
