"""GraphQL subscriptions over graphql-transport-ws at /graphql, with the reference client
(npm `graphql-ws`, run by Node): what the realtime layer publishes (POST /api/v1/notifications)
arrives as `notifications` and `systemAnnouncements`; a bad token is refused with 4403."""

from __future__ import annotations

import json
import select
import subprocess
import time
import uuid
from pathlib import Path

from tests.conftest import login

JS = Path(__file__).resolve().parents[2] / "clients" / "js"


def _lines(process: subprocess.Popen, until: float):
    """stdout lines as they come, until the process exits or the deadline passes."""
    while time.monotonic() < until:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            if not line:
                return
            yield line.strip()
        elif process.poll() is not None:
            return


def test_notifications_and_announcements_reach_a_graphql_ws_client(gateway, http):
    signed = login(http, "super-admin@acme.example")
    token, user_id = signed["access_token"], signed["user"]["id"]
    marker = uuid.uuid4().hex
    ws_url = gateway.url.replace("http://", "ws://") + "/graphql"
    client = subprocess.Popen(["node", str(JS / "subscribe.mjs"), ws_url, token, marker],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    received, deadline = [], time.monotonic() + 30
    try:
        lines = _lines(client, deadline)
        assert next(lines) == "acked"
        # The client cannot tell when the server has joined the hub, so publish until it hears.
        auth = {"Authorization": f"Bearer {token}"}
        while client.poll() is None and time.monotonic() < deadline:
            for channel in (f"notifications:{user_id}", "system:broadcast"):
                answer = http.post("/api/v1/notifications", json={"channel": channel, "data": {"marker": marker}},
                                   headers=auth)
                assert answer.status_code == 202, answer.text
            for line in _lines(client, time.monotonic() + 0.3):
                received.append(json.loads(line))
        assert client.wait(5) == 0, (received, client.stderr.read())
    finally:
        client.kill()
    by_field = {r["field"]: r["result"]["data"][r["field"]] for r in received if r["result"]["data"]}
    note, announcement = by_field["notifications"], by_field["systemAnnouncements"]
    assert note["channel"] == f"notifications:{user_id}" and note["data"] == {"marker": marker}
    assert note["userId"] == user_id and note["messageId"] and note["type"] == "message"
    assert announcement["channel"] == "system:broadcast" and announcement["data"] == {"marker": marker}


def test_a_bad_token_is_refused_in_connection_init(gateway):
    ws_url = gateway.url.replace("http://", "ws://") + "/graphql"
    run = subprocess.run(["node", str(JS / "subscribe.mjs"), ws_url, "not-a-token", "x"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 3, run.stdout + run.stderr
    closed = json.loads(run.stdout.strip().splitlines()[-1])
    assert closed["closed"] == 4403 and "Forbidden" in closed["reason"]


def test_logging_out_ends_the_subscriptions(gateway, http):
    subscriber = login(http, "manager@acme.example")  # a session of its own, logged out below
    publisher = login(http, "manager@acme.example")["access_token"]
    ws_url = gateway.url.replace("http://", "ws://") + "/graphql"
    client = subprocess.Popen(["node", str(JS / "subscribe.mjs"), ws_url, subscriber["access_token"], "never"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    try:
        lines = _lines(client, deadline)
        assert next(lines) == "acked"
        assert http.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {subscriber['access_token']}"},
                         json={}).status_code == 200
        seen = []
        while client.poll() is None and time.monotonic() < deadline:
            http.post("/api/v1/notifications", headers={"Authorization": f"Bearer {publisher}"},
                      json={"channel": f"notifications:{subscriber['user']['id']}", "data": {"after": "logout"}})
            seen += list(_lines(client, time.monotonic() + 0.3))
        assert client.wait(5) == 3, seen
    finally:
        client.kill()
    closed = json.loads(seen[-1])
    assert closed["closed"] == 4403 and "revoked" in closed["reason"]
    assert not any('"after"' in line for line in seen)  # nothing was delivered after the logout
