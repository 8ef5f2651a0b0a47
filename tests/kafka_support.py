"""Reading what the gateway published, as any consumer of the topics would."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Callable

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from runtime.events.envelope import ALL_TOPICS
from tests.support import granian_env


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: str
    headers: dict[str, str]
    event: dict


def events_env(stack, bootstrap: str, spool_dir: object, prefix: str, **extra: str) -> dict[str, str]:
    """A gateway's environment publishing to the broker at `bootstrap` under topic `prefix`."""
    return granian_env(stack.environment(), ERP_KAFKA_ENABLED="true", ERP_KAFKA_BROKERS=bootstrap,
                       ERP_KAFKA_TOPIC_PREFIX=prefix, ERP_KAFKA_SPOOL_DIR=str(spool_dir), **extra)


def topics(prefix: str) -> list[str]:
    return [f"{prefix}.{name}" for name in ALL_TOPICS]


def read_all(bootstrap: str, names: list[str]) -> list[Message]:
    """Every message now in the topics that exist, each partition read to its end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4()}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        metadata = consumer.list_topics(timeout=10)
        parts = [TopicPartition(t, p, OFFSET_BEGINNING) for t in names if t in metadata.topics
                 for p in metadata.topics[t].partitions]
        ends = {}
        for tp in parts:
            low, high = _watermarks(consumer, tp)
            if high > low:
                ends[(tp.topic, tp.partition)] = high
        if not ends:
            return []
        consumer.assign([tp for tp in parts if (tp.topic, tp.partition) in ends])
        out: list[Message] = []
        done: set = set()
        deadline = time.monotonic() + 60
        while len(done) < len(ends) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            where = (msg.topic(), msg.partition())
            if msg.error():
                continue  # partition EOF: the offset check below settles it
            out.append(Message(msg.topic(), msg.partition(), msg.offset(), (msg.key() or b"").decode(),
                               {k: v.decode() for k, v in (msg.headers() or [])}, orjson.loads(msg.value())))
            if msg.offset() + 1 >= ends[where]:
                done.add(where)
        assert len(done) == len(ends), "could not read the topics to their end"
        return out
    finally:
        consumer.close()


def _watermarks(consumer: Consumer, tp: TopicPartition) -> tuple[int, int]:
    """A topic created a moment ago may not have its leader yet (NOT_LEADER_FOR_PARTITION)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=10)
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_for(bootstrap: str, names: list[str], until: Callable[[list[Message]], bool],
             timeout: float = 60) -> list[Message]:
    """read_all until `until(messages)` holds; the last read (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        messages = read_all(bootstrap, names)
        if until(messages):
            return messages
        if time.monotonic() > deadline:
            seen = sorted({(m.topic, m.partition, m.offset) for m in messages})
            print(f"wait_for gave up after {timeout} s; read {len(messages)} messages: {seen}")
            return messages
        time.sleep(0.5)
