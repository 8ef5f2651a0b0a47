"""No event lost when the broker is away: a real Kafka 4.4 broker is stopped, killed, paused and
started again under a gateway that keeps taking requests.

Every request carries its own X-Request-ID, and every PATCH writes a sequence number into the
customer's name, so the test knows exactly which events must arrive and in which order per
key (a customer's events all land on one partition, in offset order).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter, defaultdict

import httpx
import pytest

from emulator.kafka_broker import KafkaBroker
from emulator.processes import stop
from tests.kafka_support import events_env, Message, read_all, topics, wait_for
from tests.support import DEMO_PASSWORD, poll_ready, start_gateway

pytestmark = pytest.mark.slow
CUSTOMERS = 5



@pytest.fixture()
def broker():
    with KafkaBroker() as running:
        yield running


class Client:
    """Requests whose events the test expects: request id -> (key, sequence number)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.expected: dict[str, tuple[str, int]] = {}
        self.lock = threading.Lock()
        self.seq = 0
        answer = self.http.post("/api/v1/auth/login", json={"email": "admin@acme.example", "password": DEMO_PASSWORD})
        self.user_id = answer.json()["data"]["user"]["id"]
        self.bearer = {"Authorization": f"Bearer {answer.json()['data']['access_token']}"}
        self.customers = [self.create(n) for n in range(CUSTOMERS)]

    def create(self, n: int) -> str:
        answer = self.http.post("/api/v1/crm/customers", headers=self.bearer, json={
            "name": f"c{n}", "email": f"c{n}@acme.example", "phone": "+1 555 0100", "status": "lead"})
        assert answer.status_code == 201, answer.text
        return answer.json()["data"]["id"]

    def patch(self, customer: str, http: httpx.Client | None = None) -> None:
        with self.lock:
            self.seq += 1
            seq = self.seq
            request_id = uuid.uuid4().hex
            self.expected[request_id] = (customer, seq)
        answer = (http or self.http).patch(f"/api/v1/crm/customers/{customer}", json={"name": f"n-{seq}"},
                                           headers={**self.bearer, "X-Request-ID": request_id})
        assert answer.status_code == 200, answer.text

    def login(self) -> None:
        with self.lock:
            self.seq += 1
            seq = self.seq
            request_id = uuid.uuid4().hex
            self.expected[request_id] = (self.user_id, seq)
        answer = self.http.post("/api/v1/auth/login", json={"email": "admin@acme.example", "password": DEMO_PASSWORD},
                                headers={"X-Request-ID": request_id})
        assert answer.status_code == 200, answer.text


def verdict(client: Client, messages: list[Message]) -> tuple[list[str], int, list[str]]:
    """(missing request ids, duplicates, keys whose events arrived out of order)."""
    ours = [m for m in messages if m.headers.get("x-request-id") in client.expected]
    seen = Counter(m.headers["x-request-id"] for m in ours)
    ids = Counter(m.event["id"] for m in ours)
    duplicates = sum(n - 1 for n in seen.values()) + sum(n - 1 for n in ids.values())
    missing = [r for r in client.expected if r not in seen]
    by_key: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for m in sorted(ours, key=lambda m: (m.topic, m.partition, m.offset)):
        key, seq = client.expected[m.headers["x-request-id"]]
        assert m.key == key
        by_key[key].append(seq)
    disordered = [key for key, seqs in by_key.items() if seqs != sorted(seqs)]
    return missing, duplicates, disordered


def every_event_once(client: Client, bootstrap: str, names: list[str], scenario: str) -> None:
    """Wait for every event the client expects; none missing, none twice, each key in order."""
    messages = wait_for(bootstrap, names, delivered(client), timeout=120)
    missing, duplicates, disordered = verdict(client, messages)
    print(f"\n{scenario}: {len(client.expected)} events expected, {len(missing)} missing, "
          f"{duplicates} duplicates, {len(disordered)} keys out of order")
    assert missing == [] and duplicates == 0 and disordered == []


def delivered(client: Client):
    return lambda messages: {m.headers.get("x-request-id") for m in messages} >= set(client.expected)


def test_no_event_is_lost_while_the_broker_is_down_across_a_gateway_restart(own_stack, broker, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    env = events_env(own_stack, broker.bootstrap, tmp_path / "spool", prefix)
    names = topics(prefix)
    first, url = start_gateway(env)
    second = None
    try:
        client = Client(url)
        for i in range(50):
            client.patch(client.customers[i % CUSTOMERS])
        wait_for(broker.bootstrap, names, delivered(client))

        broker.stop()
        for i in range(1000):
            client.login() if i % 50 == 0 else client.patch(client.customers[i % CUSTOMERS])
        kafka = poll_ready(url, lambda r: r.json()["data"]["dependencies"]["kafka"]["status"] == "down").json()["data"]
        assert kafka["status"] == "degraded"  # 200: the gateway serves; events wait in the spool
        assert kafka["dependencies"]["kafka"]["mode"] == "spooling"
        assert kafka["dependencies"]["kafka"]["spool"]["pending"] > 0

        stop(first)  # the gateway restarts while the broker is still away
        first = None
        second, url = start_gateway(env)
        report = httpx.get(url + "/ready").json()["data"]["dependencies"]["kafka"]
        assert report["spool"]["pending"] >= 950, report  # what the first gateway left

        broker.start()
        every_event_once(client, broker.bootstrap, names, "no-loss")
        after = poll_ready(url, lambda r: r.json()["data"]["dependencies"]["kafka"]["mode"] == "direct").json()["data"]
        assert after["dependencies"]["kafka"]["spool"]["pending"] == 0
        assert after["dependencies"]["kafka"]["status"] == "up"
    finally:
        stop(first)
        stop(second)


def test_a_broker_killed_mid_burst_loses_nothing_and_duplicates_nothing(own_stack, broker, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    env = events_env(own_stack, broker.bootstrap, tmp_path / "spool", prefix)
    names = topics(prefix)
    process, url = start_gateway(env, workers=2)
    try:
        client = Client(url)
        per_key, started = 400, threading.Barrier(CUSTOMERS + 1)
        progress = Counter()

        def burst(customer: str) -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                started.wait()
                for _ in range(per_key):
                    client.patch(customer, http)
                    progress[customer] += 1

        threads = [threading.Thread(target=burst, args=(c,)) for c in client.customers]
        for thread in threads:
            thread.start()
        started.wait()
        while sum(progress.values()) < CUSTOMERS * per_key // 4:
            threading.Event().wait(0.01)
        broker.kill()  # SIGKILL mid-burst
        broker.start()
        for thread in threads:
            thread.join()
        every_event_once(client, broker.bootstrap, names, "kill -9")
        assert len([m for m in read_all(broker.bootstrap, names) if m.headers.get("x-request-id") in client.expected]) \
            == len(client.expected)
    finally:
        stop(process)


def test_a_paused_broker_loses_and_duplicates_nothing(own_stack, broker, tmp_path):
    """SIGSTOP: the broker's sockets stay open and nothing answers (a hung broker, a long GC
    pause). Requests are answered all the same; every event arrives once the broker resumes."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    env = events_env(own_stack, broker.bootstrap, tmp_path / "spool", prefix)
    names = topics(prefix)
    process, url = start_gateway(env)
    try:
        client = Client(url)
        wait_for(broker.bootstrap, names, lambda ms: len(ms) >= CUSTOMERS)  # the creates: direct mode
        broker.pause()
        try:
            for i in range(300):
                client.login() if i % 50 == 0 else client.patch(client.customers[i % CUSTOMERS])
        finally:
            broker.resume()
        every_event_once(client, broker.bootstrap, names, "paused")
    finally:
        stop(process)

