"""Events under `gw serve`: to the spool without a broker, to Kafka with ERP_KAFKA_BROKERS;
`gw events tail` follows either, `gw events replay` sends a spool to a broker."""

from __future__ import annotations

import signal
import subprocess
import uuid

import httpx
import orjson
import pytest

from emulator.kafka_broker import KafkaBroker
from emulator.ports import free_port, wait_for_http
from tests.kafka_support import read_all, topics, wait_for
from tests.support import DEMO_PASSWORD, GW, clean_env


@pytest.fixture(scope="module")
def broker():
    with KafkaBroker() as running:
        yield running


class Serve:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([*GW, "serve", "--port", str(self.port)], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert wait_for_http(self.url + "/health", self.process, 90), "gw serve did not start"
        self.banner = ""
        # The banner's events line; the gateway's own JSON log lines share stdout.
        while not any(line.startswith("  events ") for line in self.banner.splitlines()):
            line = self.process.stdout.readline()
            assert line, "gw serve exited before printing its banner"
            self.banner += line

    def login(self, n: int = 1) -> list[str]:
        """Sign in n times; the request ids."""
        ids = []
        with httpx.Client(base_url=self.url, timeout=10) as http:
            for _ in range(n):
                ids.append(uuid.uuid4().hex)
                answer = http.post("/api/v1/auth/login", headers={"X-Request-ID": ids[-1]},
                                   json={"email": "admin@acme.example", "password": DEMO_PASSWORD})
                assert answer.status_code == 200
        return ids

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            assert self.process.wait(timeout=30) == 0


def tail(env: dict[str, str], *args: str) -> list[dict]:
    result = subprocess.run([*GW, "events", "tail", *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def test_without_a_broker_events_are_spooled_tailed_and_replayed_later(broker, tmp_path):
    spool = str(tmp_path / "spool")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    env = clean_env(ERP_KAFKA_SPOOL_DIR=spool, ERP_KAFKA_TOPIC_PREFIX=prefix)
    serve = Serve(env)
    try:
        assert f"spool {spool}" in serve.banner
        ids = serve.login(3)
        ready = httpx.get(serve.url + "/ready").json()["data"]
        assert ready["status"] == "ready"  # no broker configured is not a fault
        assert ready["dependencies"]["kafka"]["mode"] == "spool-only"
        assert ready["dependencies"]["kafka"]["spool"]["pending"] == 3
        seen = tail(env, "--from-beginning", "--count", "3", "--timeout", "30")
        assert [line["event"]["type"] for line in seen] == ["erp.auth.login.succeeded"] * 3
        assert all(line["topic"] == f"{prefix}.auth-events" for line in seen)
        later = subprocess.Popen([*GW, "events", "tail", "--count", "1", "--timeout", "30"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # only new events
        assert "following the spool" in later.stderr.readline()  # it has found the end: sign in
        ids += serve.login(1)
        out, _ = later.communicate(timeout=60)
        [new] = [orjson.loads(line) for line in out.splitlines()]
        assert new["event"]["type"] == "erp.auth.login.succeeded"

        replay = subprocess.run([*GW, "events", "replay"], env={**env, "ERP_KAFKA_BROKERS": broker.bootstrap},
                                capture_output=True, text=True, timeout=120)
        assert "held by a running gateway" in replay.stdout  # gw serve's own slot: not taken from it
    finally:
        serve.stop()
    replay = subprocess.run([*GW, "events", "replay"], env={**env, "ERP_KAFKA_BROKERS": broker.bootstrap},
                            capture_output=True, text=True, timeout=120)
    assert replay.returncode == 0, replay.stderr
    assert "4 events sent" in replay.stdout, replay.stdout
    messages = read_all(broker.bootstrap, topics(prefix))
    assert [m.headers["x-request-id"] for m in messages] == ids  # all of them, once, in order
    again = subprocess.run([*GW, "events", "replay"], env={**env, "ERP_KAFKA_BROKERS": broker.bootstrap},
                           capture_output=True, text=True, timeout=120)
    assert "0 events sent" in again.stdout  # the spool was emptied


def test_with_brokers_gw_serve_publishes_and_tail_follows_kafka(broker, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    env = clean_env(ERP_KAFKA_SPOOL_DIR=str(tmp_path / "spool"), ERP_KAFKA_TOPIC_PREFIX=prefix,
                    ERP_KAFKA_BROKERS=broker.bootstrap)
    serve = Serve(env)
    try:
        assert f"kafka {broker.bootstrap}" in serve.banner
        ids = serve.login(2)
        messages = wait_for(broker.bootstrap, topics(prefix), lambda ms: len(ms) >= 2)
        assert [m.headers["x-request-id"] for m in messages] == ids
        seen = tail(env, "--from-beginning", "--count", "2", "--timeout", "30")
        assert [line["event"]["id"] for line in seen] == [m.event["id"] for m in messages]
        ready = httpx.get(serve.url + "/ready").json()["data"]
        assert ready["dependencies"]["kafka"]["mode"] == "direct"
    finally:
        serve.stop()
