"""/ready tells the truth about the backends: 503 while auth is down, degraded for others."""

from __future__ import annotations


import pytest

from emulator.processes import stop
from tests.conftest import StackThread
from tests.support import granian_env, poll_ready, start_gateway


@pytest.fixture(scope="module")
def own_stack():
    # Its own stack: these tests stop services, which must not disturb the other tests.
    running = StackThread()
    process, url = start_gateway(granian_env(running.environment()))
    yield running, url
    stop(process)
    running.close()


def ready_until(url: str, status: int, report: str | None = None):
    return poll_ready(
        url, lambda a: a.status_code == status and (report is None or a.json()["data"]["status"] == report)
    )


def test_ready_is_503_while_auth_is_down_and_recovers(own_stack, http):
    stack, url = own_stack
    server = stack.stack.backends.servers["auth"]
    assert http.get(url + "/ready").status_code == 200
    stack.run(server.stop(0))
    try:
        answer = ready_until(url, 503)
        assert answer.status_code == 503, answer.text
        doc = answer.json()
        assert doc["success"] is False and doc["code"] == "BACKEND_UNAVAILABLE"
        assert doc["request_id"] == answer.headers["x-request-id"]
        report = doc["data"]
        assert report["status"] == "unavailable"
        assert report["dependencies"]["auth"]["status"] == "down"
        assert report["dependencies"]["crm"]["status"] == "up"
        assert http.get(url + "/health").status_code == 200  # liveness never depends on backends
    finally:
        stack.run(server.start(server.host, server.port))
    assert ready_until(url, 200).status_code == 200


def test_an_optional_backend_down_is_degraded_not_unavailable(own_stack, http):
    stack, url = own_stack
    server = stack.stack.backends.servers["finance"]
    stack.run(server.stop(0))
    try:
        answer = ready_until(url, 200, report="degraded")
        report = answer.json()["data"]
        assert answer.status_code == 200
        assert report["status"] == "degraded"
        assert report["dependencies"]["finance"]["status"] == "down"
    finally:
        stack.run(server.start(server.host, server.port))
