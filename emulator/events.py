"""`gw events tail` and `gw events replay`: watch the gateway's business events, and send a
spool to a broker.

Where events are: in Kafka when brokers are configured (`ERP_KAFKA_BROKERS` or the config
file), else in the spool directories (`kafka.spool_dir/worker-<n>`) that `gw serve` writes
when it runs without a broker.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Callable

import orjson

from runtime.config import Config
from runtime.events.envelope import ALL_TOPICS, Record
from runtime.events.spool import Spool, SpoolBusy, frames

Print = Callable[[str], None]


def brokers_configured(config: Config) -> bool:
    """True when the brokers come from the file or the environment, not the default."""
    sources = getattr(config, "_sources", {})
    return bool(config.kafka.brokers) and sources.get("kafka.brokers", "default") != "default"


def line(topic: str, key: str, event: dict) -> str:
    return orjson.dumps({"topic": topic, "key": key, "event": event}).decode()


def _slots(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("worker-*") if p.is_dir())


def tail_spool(root: Path, echo: Print, *, from_beginning: bool, count: int | None, timeout: float | None,
               started: Print = lambda _: None) -> int:
    """Follow every slot's segments: print records as they are appended (JSON lines)."""
    offsets: dict[Path, int] = {}
    if not from_beginning:
        for slot in _slots(root):
            for segment in slot.glob("*.seg"):
                offsets[segment] = segment.stat().st_size
    started(f"following the spool {root}")
    shown, deadline = 0, None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        for slot in _slots(root):
            for segment in sorted(slot.glob("*.seg")):
                start = offsets.get(segment, 0)
                try:
                    with open(segment, "rb") as fh:
                        fh.seek(start)
                        data = fh.read()
                except FileNotFoundError:  # replayed and deleted meanwhile
                    continue
                for end, payload in frames(data):
                    record = Record.decode(payload)
                    echo(line(record.topic, record.key.decode(), orjson.loads(record.value)))
                    offsets[segment] = start + end
                    shown += 1
                    if count is not None and shown >= count:
                        return shown
        time.sleep(0.1)
    return shown


def tail_kafka(config: Config, echo: Print, *, from_beginning: bool, count: int | None,
               timeout: float | None, started: Print = lambda _: None) -> int:
    from confluent_kafka import Consumer

    consumer = Consumer({
        "bootstrap.servers": ",".join(config.kafka.brokers), "group.id": f"gw-events-tail-{uuid.uuid4()}",
        "auto.offset.reset": "earliest" if from_beginning else "latest", "enable.auto.commit": False,
        "topic.metadata.refresh.interval.ms": 1000,  # topics created after we subscribed show up soon
    })
    consumer.subscribe([f"{config.kafka.topic_prefix}.{name}" for name in ALL_TOPICS])
    started(f"following {config.kafka.topic_prefix}.* on {','.join(config.kafka.brokers)}")
    shown, deadline = 0, None if timeout is None else time.monotonic() + timeout
    try:
        while deadline is None or time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            echo(line(msg.topic() or "", (msg.key() or b"").decode(), orjson.loads(msg.value() or b"{}")))
            shown += 1
            if count is not None and shown >= count:
                break
    finally:
        consumer.close()
    return shown


def replay(config: Config, root: Path, echo: Print, timeout: float) -> int:
    """Send every spool slot under `root` to the configured brokers, in order; the slots a
    running gateway holds are left to it. Returns how many events were sent."""
    from runtime.events.publisher import EventPublisher

    sent = 0
    for slot in _slots(root):
        try:
            spool = Spool(slot, config.kafka.spool_max_bytes).open()
        except SpoolBusy:
            echo(f"{slot}: held by a running gateway, which replays it itself")
            continue
        pending = spool.pending_records
        if not pending:
            spool.close()
            continue
        publisher = EventPublisher(config.kafka, spool=spool, source=config.kafka.source).start()
        deadline = time.monotonic() + timeout
        while publisher.mode != "direct" and time.monotonic() < deadline:
            time.sleep(0.1)
        done = publisher.counters.replayed
        publisher.close(timeout=5)
        sent += done
        echo(f"{slot}: {done} of {pending} events sent to {','.join(config.kafka.brokers)}"
             + ("" if done == pending else " (the rest stay spooled)"))
    return sent


__all__ = ["brokers_configured", "tail_spool", "tail_kafka", "replay"]
