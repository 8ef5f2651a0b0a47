"""The per-worker event publisher: confluent-kafka's idempotent producer, a spool for when the
broker is away, replay in order, retries, and the dead-letter topic.

Threads: `emit()` runs on the event loop and never waits: it hands the record to librdkafka's
bounded queue (`produce`, a memory copy) or appends it to the spool. Everything else runs on
one background thread, `events`: delivery reports (`poll`), fsync of the spool in batches,
probing the broker while it is away, replay, retries and dead letters.

Order per key, through an outage: while the spool holds anything, new events go to its end,
never straight to the producer; replay starts only once every record handed to the producer
before the outage is settled (librdkafka keeps retrying those itself, so no message timeout
is set: the idempotent producer then re-sends them without duplicates after a broker crash);
a record that comes back undelivered anyway (purged at shutdown) is put *before* the spool.

Outcomes of a delivery report:
- delivered: counted, and for a replayed record the spool's cursor moves past it;
- the broker is unreachable (purged, timed out, all brokers down): back to the spool, in order;
- refused but retriable (e.g. NOT_ENOUGH_REPLICAS after librdkafka's own retries): produced
  again after a backoff, up to `kafka.retry_max` attempts;
- refused for good, or out of attempts: to `<prefix>.dead-letter` with the original topic, the
  reason and the attempt count in headers.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from runtime.observability import metrics
from runtime.events.envelope import (
    ALL_TOPICS, DEAD_LETTER, DEAD_LETTER_REASON, DELIVERY_ATTEMPTS, ORIGINAL_TOPIC, Record, cloud_event, make_record, topic_for,
)
from runtime.events.spool import Spool, SpoolBusy

log = logging.getLogger("gateway.events")

# The broker (not the event) is the problem: keep the event and try again when it is back.
UNREACHABLE = frozenset({
    KafkaError._MSG_TIMED_OUT, KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT, KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN, KafkaError._FATAL, KafkaError._DESTROY, KafkaError._TIMED_OUT,
})
PROBE_INTERVAL = 0.5  # while the broker is away, how often a metadata request tries it
ADOPT_INTERVAL = 10.0  # how often a worker looks for spool slots no live process holds


def _exported(record: Record, outcome: str) -> None:
    """The same outcome as a Prometheus counter, summed over workers; labelled by topic
    (user-events, auth-events, ...: bounded), not by event type."""
    metrics.EVENTS.labels(record.topic.rsplit(".", 1)[-1], outcome).inc()


@dataclass
class Counters:
    """Monotonic totals of one worker (for metrics; `EventPublisher.stats()`)."""

    emitted: int = 0
    produced: int = 0  # acknowledged by the broker (dead letters included)
    spooled: int = 0  # written to the spool
    replayed: int = 0  # acknowledged after coming from the spool
    retried: int = 0  # produced again after a retriable refusal
    dead_lettered: int = 0  # acknowledged on the dead-letter topic
    dropped: int = 0  # lost: spool full, or refused even by the dead-letter topic
    queue_full: int = 0  # emits that found the producer's queue full


class EventPublisher:
    def __init__(self, kafka: Any, *, spool: Spool, source: str = "/erp/api-gateway",
                 extra: dict[str, Any] | None = None) -> None:
        self.prefix = kafka.topic_prefix
        self.source = source
        self.retry_max = kafka.retry_max
        self.backoff, self.backoff_max = kafka.retry_backoff, kafka.retry_backoff_max
        self.fsync_interval = kafka.spool_fsync_interval
        self.brokers = ",".join(kafka.brokers)
        self.window = max(1, kafka.queue_max_messages // 2)  # replayed records in flight at most
        self.spool = spool
        self.counters = Counters()
        self._producer_config = {
            "bootstrap.servers": self.brokers,
            "client.id": kafka.client_id,
            "enable.idempotence": True,  # implies acks=all, in-order retries without duplicates
            "acks": "all",
            # One produce request in flight per broker. With more, a batch refused with
            # NOT_LEADER_OR_FOLLOWER (a partition created a moment ago, or whose leader moved to a
            # broker that has no state for this producer) can be overtaken by the next batch,
            # which that leader accepts; librdkafka then reports the refused batch as delivered
            # ("implicitly acked by subsequent batch success") though no broker ever wrote it.
            # Seen losing the first events on new topics (confluent-kafka-go#921, still open).
            "max.in.flight.requests.per.connection": 1,
            "message.timeout.ms": 0,  # never give up on a record librdkafka holds (module docstring)
            # ...but a refusal that persists (NOT_ENOUGH_REPLICAS, say) must come back to us, for
            # our retries and the dead-letter topic, rather than hold every later event up.
            "retries": 10,
            "retry.backoff.ms": max(1, round(kafka.retry_backoff * 1000)),
            "retry.backoff.max.ms": max(1, round(kafka.retry_backoff_max * 1000)),
            "queue.buffering.max.messages": kafka.queue_max_messages,
            "linger.ms": round(kafka.linger * 1000, 3),
            "batch.num.messages": kafka.batch_size,
            "compression.type": "lz4",
            "socket.connection.setup.timeout.ms": 3000,
            "reconnect.backoff.max.ms": 1000,
            "error_cb": self._on_error,
            "logger": logging.getLogger("gateway.events.librdkafka"),
            # librdkafka logs every refused reconnect as an error; the publisher logs the outage
            # once (and /ready shows it), so only librdkafka's critical lines are kept.
            "log_level": 2,
            **(extra or {}),
        }
        # The connection settings the admin client shares with the producer (TLS, SASL, a mock cluster).
        self._admin_config = {k: v for k, v in (extra or {}).items() if k.startswith(("security.", "sasl.", "ssl.", "test.mock."))}
        self._producer: Producer | None = None
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._direct: dict[int, Record] = {}  # handed to the producer outside replay, unsettled
        self._failed_direct: list[Record] = []  # came back undelivered: go before the spool
        self._spooling = True  # until the broker is known to be reachable and the spool empty
        self._broker_up = False
        self._broker_error = "not connected yet"
        self._last_probe = 0.0
        self._probe_ms: float | None = None  # the latest metadata probe's round trip
        self._last_seen = 0.0  # when the broker last answered (a probe or a delivery report)
        self._fatal = False
        self._topics_checked = False
        self._retries: list[tuple[float, int, Record]] = []  # (due, seq, record) heap
        self._replay: deque[list] = deque()  # [slot, position, settled, record] in spool order
        self._replay_slots = itertools.count(1)
        self._replay_by_slot: dict[int, list] = {}
        self._replay_failed = False
        self._held: tuple[tuple[int, int], Record] | None = None  # read from the spool, not yet queued
        self._listeners: list[Callable[[dict], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the one call

    def emit(self, type: str, *, subject: str, data: Any, key: str | None = None, request_id: str | None = None,
             trace: tuple[tuple[str, str], ...] = (), **extensions: str) -> str:
        """Publish one event; returns its id. Never blocks, never raises for the broker's sake."""
        topic = topic_for(self.prefix, type)
        event = cloud_event(type, self.source, subject, data, **extensions)
        record = make_record(topic, event, key or subject, request_id, trace)
        self.counters.emitted += 1
        _exported(record, "emitted")
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener's bug never costs the event
                log.exception("event listener failed")
        self._submit(record)
        return event["id"]

    def subscribe(self, listener: Callable[[dict], None]) -> None:
        """Call `listener(event)` for every event this worker emits (e.g. realtime fan-out).
        It runs on the caller's thread, so it must be quick and must not block."""
        self._listeners.append(listener)

    def _submit(self, record: Record) -> None:
        with self._lock:
            record.seq = next(self._seq)
            if self._spooling or self._producer is None:
                self._to_spool(record)
                return
            try:
                self._produce(record)
            except BufferError:
                self.counters.queue_full += 1
                self._spooling = True
                log.warning("event queue full (%d records): spooling until it drains", len(self._producer))
                self._to_spool(record)
                return
            self._direct[record.seq] = record

    def _to_spool(self, record: Record) -> None:
        if self.spool.append(record.encode()):
            self.counters.spooled += 1
            _exported(record, "spooled")
        else:
            self.counters.dropped += 1
            _exported(record, "dropped")

    def _produce(self, record: Record) -> None:
        assert self._producer is not None  # callers hold a live producer
        headers: Any = record.headers  # (name, bytes) pairs, as librdkafka takes them
        self._producer.produce(record.topic, record.value, record.key, headers=headers,
                               on_delivery=partial(self._on_delivery, record))

    # ------------------------------------------------------------------ lifecycle

    def start(self, connect: bool = True) -> "EventPublisher":
        if connect and self.brokers:
            self._producer = Producer(self._producer_config)
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread, deliver what can be delivered within `timeout`, and spool the rest
        (before anything already spooled, so the order holds across the restart)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        producer = self._producer
        if producer is not None:
            if self._broker_up:
                producer.flush(timeout)
            producer.purge(in_queue=True, in_flight=True, blocking=False)
            producer.flush(0)  # purged records report here: to _failed_direct or the replay slots
            with self._lock:
                self._producer = None
                # Still unsettled: waiting for a retry, or never reported (not expected).
                waiting = [r for _, _, r in self._retries if r.slot is None]
                self._failed_direct.extend({r.seq: r for r in [*self._direct.values(), *waiting]}.values())
                self._direct.clear()
                self._spool_failed_direct()
        self.spool.close()

    def _run(self) -> None:
        last_sync, last_adopt = time.monotonic(), 0.0
        while not self._stop.is_set():
            producer = self._producer
            if producer is not None:
                if self._broker_up and time.monotonic() - last_adopt >= ADOPT_INTERVAL:
                    last_adopt = time.monotonic()
                    self._adopt_orphans()
                producer.poll(0.02)
                if self._fatal:
                    self._renew_producer()
                self._retry_due()
                if self._spooling:
                    self._advance()
            else:
                self._stop.wait(0.02)
            now = time.monotonic()
            if now - last_sync >= self.fsync_interval:
                self.spool.sync()
                last_sync = now

    # ------------------------------------------------------------------ delivery reports

    def _on_delivery(self, record: Record, err: KafkaError | None, msg: Any) -> None:
        if err is None:
            self._broker_up = True
            self._last_seen = time.monotonic()
            self.counters.produced += 1
            _exported(record, "produced")
            if record.topic.endswith("." + DEAD_LETTER) and record.header(ORIGINAL_TOPIC):
                self.counters.dead_lettered += 1
                _exported(record, "dead_lettered")
            self._settled(record)
            return
        code = err.code()
        if code in UNREACHABLE:
            if code not in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT):
                self._down(err.str())
            if record.slot is None:
                with self._lock:
                    self._direct.pop(record.seq, None)
                    self._failed_direct.append(record)
                    self._spooling = True
            else:  # replay starts again from the cursor once every replayed record has settled
                self._replay_by_slot.pop(record.slot, None)
                self._replay_failed = True
            return
        record.attempts += 1
        if err.retriable() and record.attempts < self.retry_max:
            delay = min(self.backoff_max, self.backoff * 2 ** (record.attempts - 1)) * random.uniform(0.5, 1)
            heapq.heappush(self._retries, (time.monotonic() + delay, record.seq, record))
            return
        self._dead_letter(record, err.str())

    def _dead_letter(self, record: Record, reason: str) -> None:
        if record.topic.endswith("." + DEAD_LETTER):
            log.error("event %s refused by the dead-letter topic too (%s); dropped", record.key, reason)
            self.counters.dropped += 1
            _exported(record, "dropped")
            self._settled(record)
            return
        log.warning("event to %s dead-lettered after %d attempt(s): %s", record.topic, record.attempts, reason)
        record.headers = [*record.headers, (ORIGINAL_TOPIC, record.topic.encode()),
                          (DEAD_LETTER_REASON, reason.encode()), (DELIVERY_ATTEMPTS, str(record.attempts).encode())]
        record.topic = f"{self.prefix}.{DEAD_LETTER}"
        self._reproduce(record)

    def _reproduce(self, record: Record) -> None:
        try:
            self._produce(record)
        except BufferError:  # try again on the next turn of the thread
            heapq.heappush(self._retries, (time.monotonic() + 0.01, record.seq, record))

    def _retry_due(self) -> None:
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now:
            record = heapq.heappop(self._retries)[2]
            if not record.topic.endswith("." + DEAD_LETTER):
                self.counters.retried += 1
                _exported(record, "retried")
            self._reproduce(record)

    def _settled(self, record: Record) -> None:
        if record.slot is None:
            with self._lock:
                self._direct.pop(record.seq, None)
            return
        entry = self._replay_by_slot.pop(record.slot, None)
        if entry is None:
            return
        entry[2] = True
        self.counters.replayed += 1
        acked, position = 0, None
        while self._replay and self._replay[0][2]:
            position = self._replay.popleft()[1]
            acked += 1
        if position is not None:
            self.spool.ack(position, acked)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            log.error("event producer: fatal error %s; starting a new producer", err.str())
            self._fatal = True
        elif err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._down(err.str())

    def _down(self, reason: str) -> None:
        if self._broker_up:
            log.warning("event broker unreachable (%s): spooling events", reason)
        self._broker_up = False
        self._broker_error = reason
        with self._lock:
            self._spooling = True

    def _renew_producer(self) -> None:
        with self._lock:
            old, self._spooling = self._producer, True
        if old is not None:
            old.purge(in_queue=True, in_flight=True, blocking=False)
            old.flush(0)
        self._fatal = False
        self._producer = Producer(self._producer_config)

    # ------------------------------------------------------------------ replay

    def _advance(self) -> None:
        """Spooling: probe the broker; once it is back and nothing older is unsettled, replay."""
        if not self._broker_up:
            now = time.monotonic()
            if now - self._last_probe < PROBE_INTERVAL:
                return
            self._last_probe = now
            producer = self._producer
            if producer is None:
                return
            try:
                producer.list_topics(timeout=0.5)
            except KafkaException as exc:
                self._broker_error = str(exc.args[0].str() if exc.args else exc)
                return
            self._probe_ms = round((time.monotonic() - now) * 1000, 1)
            self._last_seen = time.monotonic()
            if not self._broker_up:
                log.info("event broker reachable again: replaying the spool")
            self._broker_up = True
            if not self._topics_checked:
                self._ensure_topics()
        with self._lock:
            if self._direct:
                return  # librdkafka still delivers records from before the outage
            self._spool_failed_direct()
        if self._replay_failed:
            if self._replay_by_slot:
                return  # wait for every replayed record to settle, then start again from the cursor
            self._replay.clear()
            self._replay_failed = False
            self._held = None
            self.spool.rewind()
        while len(self._replay_by_slot) < self.window:
            item = self._held or self._read_spool()
            if item is None:
                break
            position, record = item
            try:
                self._produce(record)
            except BufferError:
                self._held = item
                return
            self._held = None
            entry = [record.slot, position, False, record]
            self._replay.append(entry)
            assert record.slot is not None  # records read back from the spool carry their slot
            self._replay_by_slot[record.slot] = entry
        if not self._replay_by_slot:
            with self._lock:
                if self.spool.reset_if_empty():
                    self._spooling = False
                    log.info("event spool drained: publishing directly again")

    def _ensure_topics(self) -> None:
        """Create the topics (broker defaults for partitions and replicas) before the first
        produce, rather than leave it to auto-creation (which a cluster may turn off). Clusters
        that forbid creation (ACLs, auto-creation off) refuse here, and the topics are then the
        operator's to make."""
        self._topics_checked = True
        admin = AdminClient({"bootstrap.servers": self.brokers, **self._admin_config})
        wanted = [NewTopic(f"{self.prefix}.{name}", -1, -1) for name in ALL_TOPICS]
        for topic, future in admin.create_topics(wanted, operation_timeout=5, request_timeout=10).items():
            try:
                future.result()
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if error is None or error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    log.warning("event topic %s not created (%s): relying on the cluster to have it", topic,
                                error.str() if error is not None else exc)

    def _adopt_orphans(self) -> None:
        """Slots of workers that are gone for good (the gateway came back with fewer workers):
        their records move to the end of this worker's spool, in their order, and replay from
        there. Records of one worker keep their order; across workers there was none."""
        for slot in sorted(self.spool.dir.parent.glob("worker-*")):
            if slot == self.spool.dir or not slot.is_dir():
                continue
            try:
                orphan = Spool(slot, self.spool.max_bytes).open()
            except (SpoolBusy, OSError):
                continue
            try:
                if not orphan.pending_records:
                    continue
                with self._lock:
                    self._spooling = True
                moved = 0
                while (item := orphan.read_next()) is not None and self.spool.append(item[1]):
                    orphan.ack(item[0], 1)
                    moved += 1
                self.counters.spooled += moved
                log.warning("adopted %d spooled events from %s (no worker holds it)", moved, slot)
            finally:
                orphan.close()

    def _read_spool(self) -> tuple[tuple[int, int], Record] | None:
        item = self.spool.read_next()
        if item is None:
            return None
        position, payload = item
        record = Record.decode(payload)
        record.slot = next(self._replay_slots)
        return position, record

    def _spool_failed_direct(self) -> None:
        """(Lock held.) Undelivered records from before the spool took over go in front of it."""
        if self._failed_direct:
            records = sorted(self._failed_direct, key=lambda r: r.seq)
            self._failed_direct.clear()
            self.spool.prepend([r.encode() for r in records])
            self.counters.spooled += len(records)

    # ------------------------------------------------------------------ reporting

    @property
    def mode(self) -> str:
        if not self.brokers:
            return "spool-only"
        return "spooling" if self._spooling else "direct"

    def health(self) -> dict[str, Any]:
        """For /ready: the broker is optional, so while it is away the gateway is degraded."""
        report: dict[str, Any] = {
            "status": "up", "latency_ms": self._probe_ms or 0.0,
            "checked_ms_ago": round((time.monotonic() - self._last_seen) * 1000) if self._last_seen else 0,
            "required": False, "mode": self.mode, "spool": self.spool.snapshot(),
            "counters": dict(vars(self.counters)),
        }
        if not self.brokers:
            return report  # no broker configured: the spool is the destination
        report["status"] = "up" if self._broker_up else "down"
        report["brokers"] = self.brokers
        if not self._broker_up:
            report["error"] = self._broker_error
        producer = self._producer
        report["queued"] = len(producer) if producer is not None else 0
        return report

    def stats(self) -> dict[str, int]:
        """Counters (monotonic) and gauges, for metrics."""
        producer = self._producer
        return {**vars(self.counters), "spool_pending": self.spool.pending_records,
                "spool_bytes": self.spool.pending_bytes, "queued": len(producer) if producer is not None else 0,
                "broker_up": int(self._broker_up)}


def worker_spool(kafka: Any) -> Spool:
    """This process's spool slot under `kafka.spool_dir`."""
    return Spool.claim(os.path.abspath(kafka.spool_dir), kafka.spool_max_bytes)
