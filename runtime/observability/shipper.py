"""Ship log records to Elasticsearch or OpenSearch with the `_bulk` API, off the request path.

`logging.elasticsearch.url` set: each worker adds a `ShipperHandler` to the root logger. Its
`emit` only turns the record into its ECS document (the same fields as the stdout line) and
appends it to a bounded buffer: a request never waits for the search engine. A background
task of the worker sends a batch every `flush_interval`, or as soon as `batch_size` records
are waiting, to `<index>-YYYY.MM.DD` (the record's UTC day: one index per day, dropped whole
when it ages out). The HTTP request runs in a thread, so a slow engine holds up only the
shipper.

Nothing grows without bound: past `buffer_size` waiting records, new records are dropped and
counted (`gateway_log_records_dropped_total{reason="buffer_full"}`). A batch the engine
cannot take (down, timeout, 5xx) goes back to the front of the buffer, space permitting, and
the shipper waits `flush_interval` before trying again; items the engine refuses one by one
are dropped (`reason="rejected"`). Each record has its own document id, so a batch sent
twice (taken, but the answer came too late) is stored once. stdout keeps every line whatever
happens here.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import orjson

from runtime.observability import metrics
from runtime.observability.logs import ecs_document

log = logging.getLogger("gateway.shipper")


class ShipperHandler(logging.Handler):
    def __init__(self, settings: Any) -> None:
        super().__init__()
        self.url = settings.url.rstrip("/") + "/_bulk"
        self.index = settings.index
        self.batch_size = settings.batch_size
        self.flush_interval = settings.flush_interval
        self.capacity = settings.buffer_size
        self.timeout = settings.timeout
        # (day, document id, document). The id makes a re-sent batch (the engine took it but
        # the answer was lost or late) overwrite its documents instead of duplicating them.
        self._buffer: collections.deque[tuple[str, str, bytes]] = collections.deque()
        self._ids = itertools.count()
        self._id_prefix = uuid.uuid4().hex[:16] + "-"
        self._lock = threading.Lock()  # emit may run on any thread; the deque alone cannot bound
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._formatter = logging.Formatter()
        self.failing = False  # the last bulk request failed (logged once per outage)

    # ------------------------------------------------------------------ the request path

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == log.name:
            return  # the shipper's own troubles go to stdout only, never round in a loop
        try:
            doc = ecs_document(record, self._formatter.formatException)
            line = orjson.dumps(doc, default=str)
            day = doc["@timestamp"][:10].replace("-", ".")
        except Exception:  # a record that cannot be serialised must not break logging
            self.handleError(record)
            return
        with self._lock:
            if len(self._buffer) >= self.capacity:
                dropped = True
            else:
                dropped = False
                self._buffer.append((day, self._id_prefix + str(next(self._ids)), line))
                full = len(self._buffer) >= self.batch_size
        if dropped:
            metrics.LOG_RECORDS_DROPPED.labels("buffer_full").inc()
        elif full and self._wake is not None and self._loop is not None and not self._wake.is_set():
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the loop is closed: the final flush takes it
                pass

    # ------------------------------------------------------------------ the background task

    def start(self) -> None:
        """In the worker's lifespan, on its event loop."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = self._loop.create_task(self._run(), name="log-shipper")

    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109  (bounds the final flush)
        """Stop the task, then one last attempt to send what is buffered."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        deadline = time.monotonic() + timeout
        while self._buffer and time.monotonic() < deadline:
            if not await self._flush_once():
                break

    def pending(self) -> int:
        return len(self._buffer)

    async def _run(self) -> None:
        assert self._wake is not None  # made in start(), before this task
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            while self._buffer:
                if not await self._flush_once():
                    break  # the engine is slow or gone: wait one interval before trying again
                if len(self._buffer) < self.batch_size:
                    break  # a partial batch waits for the interval

    def _take(self) -> list[tuple[str, str, bytes]]:
        with self._lock:
            return [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]

    def _give_back(self, batch: list[tuple[str, str, bytes]]) -> None:
        with self._lock:
            room = self.capacity - len(self._buffer)
            kept = batch[:max(0, room)]
            self._buffer.extendleft(reversed(kept))
        if len(kept) < len(batch):
            metrics.LOG_RECORDS_DROPPED.labels("buffer_full").inc(len(batch) - len(kept))

    async def _flush_once(self) -> bool:
        """Send one batch; False when the engine did not take it (it is back in the buffer)."""
        batch = self._take()
        if not batch:
            return True
        index = self.index.encode()
        body = b"".join(b'{"index":{"_index":"%s-%s","_id":"%s"}}\n%s\n' % (index, day.encode(), doc_id.encode(), line)
                        for day, doc_id, line in batch)
        try:
            answer = await asyncio.to_thread(self._post, body)
        except Exception as exc:  # down, timeout, 5xx, not JSON: all the same to us
            self._give_back(batch)
            if not self.failing:
                self.failing = True
                log.warning("log shipping failing; records are buffered", extra={"error": str(exc)[:200]})
            return False
        if self.failing:
            self.failing = False
            log.warning("log shipping works again")
        refused = sum(1 for item in answer.get("items", ()) if next(iter(item.values())).get("error"))
        if refused:
            metrics.LOG_RECORDS_DROPPED.labels("rejected").inc(refused)
        metrics.LOG_RECORDS_SHIPPED.inc(len(batch) - refused)
        return True

    def _post(self, body: bytes) -> dict:
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/x-ndjson"})
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:
            return orjson.loads(answer.read())


def install(settings: Any) -> ShipperHandler | None:
    """Add a shipper to the root logger when `logging.elasticsearch.url` is set; start it."""
    if not settings.url:
        return None
    handler = ShipperHandler(settings)
    logging.getLogger().addHandler(handler)
    handler.start()
    return handler
