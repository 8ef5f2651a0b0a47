"""The publisher's decisions, against librdkafka's in-process mock cluster (a real producer).
The mock broker cannot be told to refuse a record retriably, so the retry test hands the
refusal to the delivery report as librdkafka would, and records what would be produced."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError

from runtime.config import load_config
from runtime.events.envelope import Record, topic_for
from runtime.events.publisher import EventPublisher
from runtime.events.spool import Spool

MOCK = {"test.mock.num.brokers": 1}


def until(condition, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


@pytest.fixture()
def publisher(tmp_path):
    config = load_config(env={"ERP_KAFKA_RETRY_MAX": "3", "ERP_KAFKA_RETRY_BACKOFF": "1ms",
                              "ERP_KAFKA_RETRY_BACKOFF_MAX": "5ms"})
    running = EventPublisher(config.kafka, spool=Spool(tmp_path, 1 << 20).open(), extra=MOCK).start()
    yield running
    running.close(1)


def test_events_go_direct_once_the_broker_answers_and_are_acknowledged(publisher):
    assert until(lambda: publisher.mode == "direct")
    event_id = publisher.emit("erp.crm.customer.created", subject="c-1", data={"id": "c-1"}, request_id="r-1")
    assert len(event_id) == 36
    assert until(lambda: publisher.counters.produced == 1)
    assert publisher.counters.spooled == 0 and publisher.health()["status"] == "up"


def test_a_retriable_refusal_is_retried_with_backoff_then_dead_lettered(publisher):
    assert until(lambda: publisher.mode == "direct")
    publisher._stop.set()  # drive the delivery reports by hand from here: no thread racing us
    publisher._thread.join()
    sent = []  # what the publisher hands the producer, instead of the mock broker accepting it
    publisher._produce = lambda record: sent.append(record.topic)
    refused = Record(topic_for("erp", "erp.user.registered"), b"u-2", b"{}", [], seq=10_000)
    not_enough = KafkaError(KafkaError.NOT_ENOUGH_REPLICAS, "Broker: Not enough in-sync replicas", retriable=True)
    publisher._direct[refused.seq] = refused
    for attempt in (1, 2):
        publisher._on_delivery(refused, not_enough, None)
        assert refused.attempts == attempt and refused.topic == "erp.user-events"
        [(due, _, queued)] = publisher._retries
        assert queued is refused and due > time.monotonic() - 1  # after a backoff, not at once
        assert until(lambda: (publisher._retry_due(), not publisher._retries)[1])
        assert publisher.counters.retried == attempt
    publisher._on_delivery(refused, not_enough, None)  # the third: kafka.retry_max reached
    assert refused.topic == "erp.dead-letter"
    assert dict(refused.headers)["x-delivery-attempts"] == b"3"
    assert dict(refused.headers)["x-original-topic"] == b"erp.user-events"
    assert b"in-sync" in dict(refused.headers)["x-dead-letter-reason"]
    assert sent == ["erp.user-events", "erp.user-events", "erp.dead-letter"]
    publisher._on_delivery(refused, None, None)  # the dead-letter topic takes it
    assert publisher.counters.dead_lettered == 1
    assert refused.seq not in publisher._direct  # settled: replay is not held up by it


def test_a_malformed_type_is_a_bug_not_an_event(publisher):
    with pytest.raises(ValueError, match=r"erp\.<domain>\.<what>"):
        publisher.emit("CustomerCreated", subject="c", data={})
    assert topic_for("erp", "erp.security.lockout.started") == "erp.auth-events"
    assert topic_for("erp", "erp.finance.invoice.updated") == "erp.api-events"


def test_a_slot_no_worker_holds_any_more_is_adopted_and_replayed(tmp_path):
    left = Spool(tmp_path / "worker-3", 1 << 20).open()  # a worker of a bigger gateway, gone
    for n in range(3):
        left.append(Record("erp.api-events", b"k", b'{"n": %d}' % n, []).encode())
    left.close()
    config = load_config(env={"ERP_KAFKA_SPOOL_DIR": str(tmp_path)})
    from runtime.events.publisher import worker_spool

    publisher = EventPublisher(config.kafka, spool=worker_spool(config.kafka), extra=MOCK).start()
    try:
        assert publisher.spool.dir.name == "worker-0"
        assert until(lambda: publisher.counters.replayed == 3 and publisher.mode == "direct")
        assert Spool(tmp_path / "worker-3", 1 << 20).open().pending_records == 0
    finally:
        publisher.close(1)
