"""Logout while Valkey is down, and tokens checked while neither the feed nor Valkey answers
(issue 9.1).

Two gateway instances share a valkey-server of their own, which the test stops and starts:
A (`security.revocation_unavailable: fail_open`, the default) and B (`fail_closed`). A logout
is never answered 200 unless Valkey holds the revocation: while it is down the answer is 503
and the client retries; once the retry succeeds, the token is refused on the other instance.
"""

from __future__ import annotations

import time

import httpx
import pytest

from emulator.processes import stop
from emulator.valkey import EmbeddedValkey
from tests.support import DEMO_PASSWORD, granian_env, poll_ready, start_gateway

ME, LOGOUT = "/api/v1/auth/me", "/api/v1/auth/logout"


@pytest.fixture(scope="module")
def outage(stack, tmp_path_factory):
    server = EmbeddedValkey().start()
    log = tmp_path_factory.mktemp("outage") / "b.log"
    base = dict(ERP_REDIS_PORT=str(server.port), ERP_GRPC_HEALTH_INTERVAL="200ms")
    processes = []
    try:
        a, url_a = start_gateway(granian_env(stack.environment(), **base))
        processes.append(a)
        with open(log, "wb") as sink:
            b, url_b = start_gateway(granian_env(stack.environment(), **base,
                                                 ERP_SECURITY_REVOCATION_UNAVAILABLE="fail_closed"), stderr=sink)
        processes.append(b)
        with httpx.Client(base_url=url_a, timeout=10) as ca, httpx.Client(base_url=url_b, timeout=10) as cb:
            yield server, ca, cb, log
    finally:
        for process in processes:
            stop(process)
        server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def until(condition, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def valkey_report(client: httpx.Client) -> dict:
    return client.get("/ready").json()["data"]["dependencies"]["valkey"]


def test_logout_is_never_200_without_a_stored_revocation(outage):
    server, a, b, log = outage
    signed_in = a.post("/api/v1/auth/login", json={"email": "admin@acme.example", "password": DEMO_PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["data"]["access_token"]
    assert a.get(ME, headers=bearer(token)).status_code == 200
    assert b.get(ME, headers=bearer(token)).status_code == 200

    server.stop()
    try:
        refused = a.post(LOGOUT, headers=bearer(token), json={})
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "BACKEND_UNAVAILABLE"
        assert refused.headers["Retry-After"] == "1"
        # A said no, and meant it: nobody revoked the token, so A (fail_open) still accepts it ...
        assert a.get(ME, headers=bearer(token)).status_code == 200
        # ... and B (fail_closed) refuses every token while it cannot check revocations.
        closed = until(lambda: (r := b.get(ME, headers=bearer(token))).status_code == 503 and r)
        assert closed.json()["code"] == "BACKEND_UNAVAILABLE"
        assert b.get("/health").status_code == 200
        for _ in range(5):
            assert b.get(ME, headers=bearer(token)).status_code == 503
        report = poll_ready(str(b.base_url).rstrip("/"), lambda r: r.json()["data"]["status"] == "degraded").json()["data"]
        assert report["dependencies"]["valkey"]["revocations"] == "unchecked (fail_closed)"
        assert report["dependencies"]["valkey"]["revocation_checks_unchecked"] >= 6
        assert valkey_report(a)["revocations"] == "unchecked (fail_open)"
        assert valkey_report(a)["revocation_checks_unchecked"] >= 1
    finally:
        server.start()

    # The client retries as told; once Valkey is back the logout succeeds ...
    done = until(lambda: (r := a.post(LOGOUT, headers=bearer(token), json={})).status_code != 503 and r)
    assert done.status_code == 200, done.text
    # ... and the other instance refuses the token.
    until(lambda: b.get(ME, headers=bearer(token)).status_code == 401, timeout=5)
    assert [b.get(ME, headers=bearer(token)).status_code for _ in range(3)] == [401] * 3
    assert a.get(ME, headers=bearer(token)).status_code == 401
    until(lambda: valkey_report(b)["revocations"] in ("synced", "per-request"))

    # B said so once when it went blind and once when it could see again, not once per request.
    lines = log.read_text().splitlines()
    assert sum("revocations cannot be checked" in line for line in lines) == 1, lines
    assert sum("revocations checked again" in line for line in lines) == 1, lines
