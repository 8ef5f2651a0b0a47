"""Log shipping to a real OpenSearch node (tests/peers/opensearch.sh): records are found with
`_search` in the day's index, and a frozen or stopped node costs requests nothing: records
wait in a bounded buffer, the excess is dropped and counted, and the rest arrive later."""

from __future__ import annotations

import datetime
import subprocess
import time
import uuid

import httpx
import pytest

from emulator.processes import stop
from tests.metrics_text import scrape
from tests.opensearch_node import OpenSearchNode
from tests.support import granian_env, start_gateway


@pytest.fixture(scope="module")
def node():
    started = OpenSearchNode().start()
    yield started
    started.stop()


def ship_to(stack, node, **extra):
    settings = {"ERP_LOGGING_ELASTICSEARCH_FLUSH_INTERVAL": "200ms", "ERP_LOGGING_ELASTICSEARCH_BATCH_SIZE": "20", **extra}
    env = granian_env(stack.environment(), ERP_LOGGING_LEVEL="info", ERP_LOGGING_ELASTICSEARCH_URL=node.url, **settings)
    return start_gateway(env, workers=2, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(check, timeout: float = 30, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def test_records_are_found_in_the_days_index(stack, node):
    process, url = ship_to(stack, node)
    tag = uuid.uuid4().hex[:12]
    try:
        ids = [f"ship-{tag}-{n}" for n in range(25)]
        for rid in ids:
            with httpx.Client(base_url=url, timeout=10) as client:  # either worker
                assert client.get("/health", headers={"X-Request-ID": rid}).status_code == 200
        query = {"prefix": {"http.request.id.keyword": f"ship-{tag}-"}}
        hits = wait_for(lambda: len(found := node.search(query)) == len(ids) and found)
        assert hits, f"found {len(node.search(query))} of {len(ids)}"
        shipped = scrape(url).value("gateway_log_records_shipped_total")
    finally:
        stop(process)
    today = datetime.datetime.now(datetime.UTC).strftime("%Y.%m.%d")
    assert {h["_index"] for h in hits} == {f"erp-api-gateway-{today}"}
    assert sorted(h["_source"]["http.request.id"] for h in hits) == sorted(ids)
    doc = hits[0]["_source"]
    assert doc["log.level"] == "info" and doc["url.path"] == "/health" and doc["http.response.status_code"] == 200
    assert doc["@timestamp"].startswith(today.replace(".", "-"))
    assert shipped >= len(ids)
    settings = httpx.get(f"{node.url}/erp-api-gateway-{today}/_settings", timeout=10).json()
    assert settings[f"erp-api-gateway-{today}"]["settings"]["index"]["number_of_replicas"] == "0"


def test_a_frozen_node_costs_requests_nothing_and_the_buffer_is_bounded(stack, node):
    # The node is frozen (SIGSTOP): connections open, nothing answers, so a bulk request hangs
    # for its whole timeout (5 minutes). Each request must still answer within the client's
    # 10 s timeout: one that waited on the shipper would wait minutes.
    process, url = ship_to(stack, node, ERP_LOGGING_ELASTICSEARCH_BUFFER_SIZE="20",
                           ERP_LOGGING_ELASTICSEARCH_BATCH_SIZE="10", ERP_LOGGING_ELASTICSEARCH_TIMEOUT="300s")
    tag = uuid.uuid4().hex[:12]
    try:
        node.freeze()
        try:
            for n in range(100):
                with httpx.Client(base_url=url, timeout=10) as client:
                    assert client.get("/health", headers={"X-Request-ID": f"frozen-{tag}-{n}"}).status_code == 200
            dropped = scrape(url).value("gateway_log_records_dropped_total", reason="buffer_full")
        finally:
            node.thaw()
        # 100 requests over 2 workers, each holding at most 20 buffered and 10 in its stuck
        # request: the rest were dropped and counted (which also proves the shipper was stuck).
        assert dropped >= 100 - 2 * (20 + 10)
        # Thawed, the node takes what was kept.
        query = {"prefix": {"http.request.id.keyword": f"frozen-{tag}-"}}
        kept = wait_for(lambda: node.search(query), timeout=90)
        assert 0 < len(kept) <= 100 - dropped
    finally:
        stop(process)


def test_a_stopped_node_costs_requests_nothing(stack, node):
    """Last in this module: it stops the module's node."""
    process, url = ship_to(stack, node, ERP_LOGGING_ELASTICSEARCH_BUFFER_SIZE="1000")
    try:
        node.stop()
        for _ in range(50):
            with httpx.Client(base_url=url, timeout=10) as client:
                assert client.get("/health").status_code == 200
        m = scrape(url)
        assert m.value("gateway_log_records_dropped_total", reason="buffer_full") == 0  # all kept, waiting
        assert httpx.get(url + "/ready", timeout=10).status_code == 200  # the search engine is not a dependency
    finally:
        stop(process)
