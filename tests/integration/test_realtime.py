"""WebSocket notifications end to end: two gateway instances of two Granian workers each, one
valkey-server, real WebSocket clients (`websockets`), publishing through the REST endpoint.

Liveness settings are seconds here (ping 1s, pong timeout 1s, auth timeout 1s) so that the
tests that wait for them are short; clients answer pings (tests/integration/realtime_client.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import tempfile
import uuid

import httpx
import pytest
import valkey.asyncio as valkey_asyncio
import websockets

from emulator.processes import stop
from runtime.config import load_config
from runtime.rbac import Policy
from runtime.realtime import Hub
from tests.conftest import login
from tests.integration.realtime_client import Client, ws_url
from tests.support import gateways, granian_env, poll_ready, start_gateway

pytestmark = pytest.mark.slow

REALTIME_ENV = {
    "ERP_REALTIME_PING_PERIOD": "1s",
    "ERP_REALTIME_PONG_TIMEOUT": "1s",
    "ERP_REALTIME_AUTH_TIMEOUT": "1s",
    "ERP_REALTIME_SEND_QUEUE": "64",
    "ERP_REALTIME_MAX_CONNECTIONS_PER_USER": "12",
    "ERP_REALTIME_MAX_MESSAGE_BYTES": "4096",
    "ERP_REALTIME_MESSAGE_RATE": "5",
    "ERP_REALTIME_MESSAGE_BURST": "20",
    "ERP_CORS_ALLOWED_ORIGINS": "http://app.example",
}

USERS = ("admin@acme.example", "employee@acme.example", "manager@acme.example", "viewer@acme.example",
         "super-admin@acme.example", "admin@globex.example", "sales-manager@acme.example",
         "hr-manager@acme.example", "finance-manager@acme.example", "employee@globex.example")


def realtime_env(stack, **extra: str) -> dict[str, str]:
    return granian_env(stack.environment(), **REALTIME_ENV, **extra)


@pytest.fixture(scope="module")
def instances(stack):
    with gateways(realtime_env(stack), realtime_env(stack), workers=(2, 2)) as urls:
        yield tuple(urls)


@pytest.fixture(scope="module")
def users(instances):
    with httpx.Client(base_url=instances[0], timeout=10) as client:
        return {email: login(client, email) for email in USERS}


def token(users, email: str) -> str:
    return users[email]["access_token"]


def uid(users, email: str) -> str:
    return users[email]["user"]["id"]


def org(users, email: str) -> str:
    return users[email]["user"]["organization_id"]


async def publish(url: str, bearer: str, channel: str, data: dict) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await client.post("/api/v1/notifications", json={"channel": channel, "data": data},
                                 headers={"Authorization": f"Bearer {bearer}"})


@contextlib.asynccontextmanager
async def publishing_hub(stack):
    """A hub in this process on the gateways' Valkey: publishes exactly as a handler's would."""
    config = load_config(env=stack.environment())
    client = valkey_asyncio.Valkey(host=config.redis.host, port=config.redis.port)
    hub = Hub(client, config.redis.key_prefix, config.realtime, Policy(config.rbac.roles))
    try:
        yield hub
    finally:
        await client.aclose()


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 120))


# -- 1. auth ------------------------------------------------------------------------------

def test_ready_says_the_fan_out_subscription_is_live(instances):
    for url in instances:
        answer = poll_ready(url, lambda a: a.json()["data"]["dependencies"]["valkey"].get("realtime") == "subscribed")
        assert answer.json()["data"]["dependencies"]["valkey"]["realtime"] == "subscribed", answer.text


def test_a_token_in_the_header_the_query_or_the_first_message(instances, users):
    async def scenario():
        url, bearer = instances[0], token(users, "employee@acme.example")
        me = uid(users, "employee@acme.example")
        for client in (await Client.open(url, bearer),
                       await Client.open(url, query=f"?token={bearer}"),
                       await Client.open(url, bearer, first_auth=True)):
            hello = await client.wait_connected()
            assert hello["user_id"] == me
            assert hello["channels"] == [f"notifications:{me}", "system:broadcast"]
            await client.close()

    run(scenario())


def test_no_valid_token_is_a_401_before_the_upgrade_or_close_4001(instances, users):
    async def scenario():
        url = instances[0]
        for headers, query in (({"Authorization": "Bearer not.a.token"}, ""), ({"Authorization": "Basic abc"}, ""),
                               ({}, "?token=garbage")):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(ws_url(url) + query, additional_headers=headers)
            response = refused.value.response
            assert response.status_code == 401
            doc = json.loads(response.body)
            assert doc["success"] is False and doc["code"] == "UNAUTHENTICATED" and doc["request_id"]
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        # A revoked token too.
        revoked = login_fresh(url, "viewer@acme.example")
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {revoked}"})).status_code == 200
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(ws_url(url), additional_headers={"Authorization": f"Bearer {revoked}"})
        assert refused.value.response.status_code == 401
        # No token in the upgrade: the first message must authenticate, within auth_timeout.
        silent = await Client.open(url)
        assert await silent.wait_closed() == 4001
        wrong = await Client.open(url)
        await wrong.send({"type": "subscribe", "channel": "system:broadcast"})
        assert await wrong.wait_closed() == 4001
        bad = await Client.open(url, "not-a-token", first_auth=True)
        assert await bad.wait_closed() == 4001
        assert bad.ws.close_reason == "Token is malformed"

    run(scenario())


def login_fresh(url: str, email: str) -> str:
    with httpx.Client(base_url=url, timeout=10) as client:
        return login(client, email)["access_token"]


def test_origin_is_checked_against_configuration(instances, users):
    async def scenario():
        url, bearer = instances[0], token(users, "employee@acme.example")
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(ws_url(url), additional_headers={"Authorization": f"Bearer {bearer}"},
                                     origin="http://evil.example")
        assert refused.value.response.status_code == 403
        assert json.loads(refused.value.response.body)["code"] == "FORBIDDEN"
        allowed = await Client.open(url, bearer, origin="http://app.example")
        await allowed.wait_connected()
        await allowed.close()

    run(scenario())


def test_the_query_token_is_never_written_to_the_logs(stack, users):
    """A gateway logging at debug level into a file; the ?token= of good and bad sockets
    must appear nowhere in it."""
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as logfile:
        process, url = start_gateway(realtime_env(stack, ERP_LOGGING_LEVEL="debug"), workers=1,
                                     stdout=logfile, stderr=subprocess.STDOUT)
        try:
            bearer = login_fresh(url, "employee@acme.example")

            async def scenario():
                good = await Client.open(url, query=f"?token={bearer}&since=1-1")
                await good.wait_connected()
                await good.send({"type": "subscribe", "channel": "org:nope"})
                await good.wait_for(lambda f: f["type"] == "error")
                await good.close()
                with pytest.raises(websockets.InvalidStatus):
                    await websockets.connect(ws_url(url) + "?token=secret-looking-garbage")

            run(scenario())
        finally:
            stop(process)
        logfile.seek(0)
        text = logfile.read()
        assert text, "the gateway logged nothing: the check below would prove nothing"
        assert bearer not in text and bearer.split(".")[2] not in text
        assert "secret-looking-garbage" not in text


# -- 2./3. protocol and channels -----------------------------------------------------------

def test_subscribe_unsubscribe_acks_errors_and_the_acl(instances, users):
    async def scenario():
        url = instances[1]
        email = "manager@acme.example"
        client = await Client.open(url, token(users, email))
        await client.wait_connected()
        own_org = org(users, email)
        allowed = [f"org:{own_org}", "role:manager", "events:crm.customer.created", "system:broadcast"]
        for channel in allowed:
            await client.send({"type": "subscribe", "channel": channel})
            await client.wait_for(lambda f, c=channel: f["type"] == "ack" and f["channel"] == c)
        # The seed's shape: the channel inside data.
        await client.send({"type": "unsubscribe", "data": {"channel": "role:manager"}})
        await client.wait_for(lambda f: f == {"type": "ack", "action": "unsubscribe", "channel": "role:manager"})
        refused = [f"org:{org(users, 'admin@globex.example')}", "role:admin", "role:super_admin",
                   f"notifications:{uid(users, 'admin@acme.example')}", "system:other", "chat:lobby", "org:"]
        for channel in refused:
            await client.send({"type": "subscribe", "channel": channel})
            error = await client.wait_for(lambda f, c=channel: f["type"] == "error" and f.get("channel") == c)
            assert error["code"] in (4003, 4400), error
        assert {f["code"] for f in client.frames if f["type"] == "error"} == {4003, 4400}
        # Malformed frames are errors too, and the socket stays open through all of them.
        await client.send("not json")
        await client.send({"no": "type"})
        await client.send({"type": "shout"})
        await client.send({"type": "ping"})
        await client.wait_for(lambda f: f["type"] == "pong")
        assert sum(1 for f in client.frames if f["type"] == "error" and f["code"] == 4400) >= 5
        assert client.close_code is None
        await client.close()

        viewer = await Client.open(url, token(users, "viewer@acme.example"))
        await viewer.send({"type": "subscribe", "channel": "events:crm.customer.created"})
        error = await viewer.wait_for(lambda f: f["type"] == "error")
        assert error["code"] == 4003  # events need realtime.events:subscribe
        await viewer.close()

    run(scenario())


# -- 4. publishing -------------------------------------------------------------------------

def test_rest_publish_validation_and_permissions(instances, users):
    async def scenario():
        url = instances[0]
        viewer, admin = token(users, "viewer@acme.example"), token(users, "admin@acme.example")
        cases = [
            (viewer, {"channel": "chat:x", "data": {}}, 400, "channel"),
            (viewer, {"data": {}}, 400, "channel"),
            (viewer, {"channel": f"notifications:{uid(users, 'viewer@acme.example')}"}, 400, "data"),
            (viewer, {"channel": f"notifications:{uid(users, 'viewer@acme.example')}", "data": [1]}, 400, "data"),
            (viewer, {"channel": f"notifications:{uid(users, 'viewer@acme.example')}", "data": {}, "x": 1}, 400, "x"),
            (viewer, {"channel": f"org:{org(users, 'viewer@acme.example')}", "data": {}}, 403, None),
            (admin, {"channel": f"org:{org(users, 'admin@globex.example')}", "data": {}}, 403, None),
            (admin, {"channel": "system:broadcast", "data": {}}, 403, None),
            (admin, {"channel": f"notifications:{uid(users, 'admin@globex.example')}", "data": {}}, 404, "channel"),
            (admin, {"channel": "notifications:no-such-user", "data": {}}, 404, "channel"),
        ]
        async with httpx.AsyncClient(base_url=url) as client:
            for bearer, body, status, field in cases:
                answer = await client.post("/api/v1/notifications", json=body, headers={"Authorization": f"Bearer {bearer}"})
                assert answer.status_code == status, (body, answer.text)
                doc = answer.json()
                assert doc["success"] is False and doc["request_id"]
                if field:
                    assert field in doc["errors"], doc
            answer = await client.post("/api/v1/notifications", json={"channel": "org:x", "data": {}})
            assert answer.status_code == 401
        # Allowed: one's own notifications (anyone), and with the permission the org and roles.
        me = uid(users, "viewer@acme.example")
        answer = await publish(url, viewer, f"notifications:{me}", {"note": "to self"})
        assert answer.status_code == 202, answer.text
        sent = answer.json()["data"]
        assert sent["channel"] == f"notifications:{me}" and sent["data"] == {"note": "to self"}
        assert sent["user_id"] == me and sent["type"] == "message" and sent["message_id"] and sent["timestamp"]
        for channel in (f"org:{org(users, 'admin@acme.example')}", "role:viewer", f"notifications:{me}"):
            assert (await publish(url, admin, channel, {})).status_code == 202
        assert (await publish(url, token(users, "super-admin@acme.example"), "system:broadcast", {})).status_code == 202

    run(scenario())


def test_registration_announces_the_new_user_on_the_organization_channel(instances, users):
    """Nobody of a brand-new organization is connected when it registers: the announcement is
    read back from the channel's resume window."""
    async def scenario():
        url = instances[1]
        viewer = token(users, "viewer@acme.example")
        marker = (await publish(url, viewer, f"notifications:{uid(users, 'viewer@acme.example')}", {})).json()["data"]
        domain = f"rt-{uuid.uuid4().hex[:8]}.example"
        async with httpx.AsyncClient(base_url=url) as client:
            answer = await client.post("/api/v1/auth/register", json={
                "first_name": "Ada", "last_name": "Lovelace", "email": f"ada@{domain}", "password": "Str0ng-pass-123!",
                "password_confirmation": "Str0ng-pass-123!", "organization_name": "Analytical", "domain": domain})
        assert answer.status_code == 201, answer.text
        new = answer.json()["data"]
        client = await Client.open(url, new["access_token"])
        await client.send({"type": "subscribe", "channel": f"org:{new['user']['organization_id']}",
                           "since": marker["message_id"]})
        announced = await client.wait_for(lambda f: f["type"] == "message")
        assert announced["data"]["event"] == "user.registered"
        assert announced["data"]["user"]["email"] == f"ada@{domain}"
        assert announced["user_id"] == new["user"]["id"]
        await client.close()

    run(scenario())


# -- 5. fan-out ----------------------------------------------------------------------------

def test_fan_out_reaches_every_intended_client_once_on_every_worker(instances, users):
    async def scenario():
        acme_org = org(users, "admin@acme.example")
        # Who listens to what: (email, extra channels).
        plan = [
            ("employee@acme.example", [f"org:{acme_org}"]),
            ("manager@acme.example", [f"org:{acme_org}", "role:manager", "events:deal.won"]),
            ("admin@acme.example", ["role:admin", "events:deal.won"]),
            ("viewer@acme.example", []),
            ("admin@globex.example", [f"org:{org(users, 'admin@globex.example')}", "role:admin", "events:deal.won"]),
        ]
        clients: list[tuple[str, set[str], Client]] = []
        pids: dict[str, set[str]] = {instances[0]: set(), instances[1]: set()}
        # Every user holds a socket on each worker of both instances (plus one more per
        # instance): fresh connections until each worker has one, at most 40 tries each.
        for email, extra in plan:
            for url in instances:
                held: dict[str, int] = {}
                for _ in range(40):
                    client = await Client.open(url, token(users, email))
                    await client.wait_connected()
                    if held.get(client.pid, 0) >= (2 if len(held) == 2 else 1):
                        await client.close()  # this worker has its share already
                        if len(held) == 2 and sum(held.values()) >= 3:
                            break
                        continue
                    held[client.pid] = held.get(client.pid, 0) + 1
                    for channel in extra:
                        await client.send({"type": "subscribe", "channel": channel})
                        await client.wait_for(lambda f, c=channel: f["type"] == "ack" and f["channel"] == c)
                    pids[url].add(client.pid)
                    clients.append((email, {f"notifications:{uid(users, email)}", "system:broadcast", *extra}, client))
                    if len(held) == 2 and sum(held.values()) >= 3:
                        break
                assert len(held) == 2, f"{email}'s sockets on {url} reached one worker only: {held}"
        assert all(len(p) == 2 for p in pids.values()), f"sockets did not reach all four workers: {pids}"

        admin, boss = token(users, "admin@acme.example"), token(users, "super-admin@acme.example")
        sends = [  # (instance, bearer, channel, who must get it: emails)
            (0, admin, f"notifications:{uid(users, 'employee@acme.example')}", {"employee@acme.example"}),
            (1, admin, f"org:{acme_org}", {"employee@acme.example", "manager@acme.example"}),
            (0, admin, "role:manager", {"manager@acme.example"}),
            (1, admin, "role:admin", {"admin@acme.example"}),  # not Globex's admin
            (0, admin, "events:deal.won", {"manager@acme.example", "admin@acme.example"}),  # not Globex
            (1, token(users, "admin@globex.example"), "events:deal.won", {"admin@globex.example"}),
            (0, boss, "system:broadcast", {e for e, _ in plan}),
        ]
        expected: dict[int, set[str]] = {}
        for n, (instance, bearer, channel, recipients) in enumerate(sends):
            answer = await publish(instances[instance], bearer, channel, {"n": n})
            assert answer.status_code == 202, answer.text
            expected[n] = recipients
        # A last broadcast through the other instance: every worker receives the feed in
        # publish order, so a client that has it has everything published before it.
        done = (await publish(instances[1], boss, "system:broadcast", {"n": "end"})).json()["data"]["message_id"]
        for _, _, client in clients:
            await client.wait_for(lambda f: f.get("message_id") == done, timeout=20)
        for email, _, client in clients:
            got = [m["data"]["n"] for m in client.messages() if m["data"]["n"] != "end"]
            want = [n for n, recipients in expected.items() if email in recipients]
            assert got == want, (email, client.pid, got, want)
            assert len({m["message_id"] for m in client.messages()}) == len(client.messages())
        for _, _, client in clients:
            await client.close()

    run(scenario())


# -- 6. liveness and back-pressure ---------------------------------------------------------

def test_pings_and_the_pong_timeout(instances, users):
    async def scenario():
        url, bearer = instances[0], token(users, "hr-manager@acme.example")
        mute = await Client.open(url, bearer, answer_pings=False)
        lively = await Client.open(url, bearer)
        assert await mute.wait_closed(timeout=15) == 4408
        assert mute.pings >= 1
        while lively.pings < 2:  # a client that answers stays open across pings
            await asyncio.sleep(0.1)
        assert lively.close_code is None
        await lively.close()

    run(scenario())


def test_a_client_that_stops_reading_is_dropped_without_slowing_others(stack, instances, users):
    async def scenario():
        url = instances[1]
        email = "finance-manager@acme.example"
        me, bearer = uid(users, email), token(users, email)
        # max_queue=1: the library stops reading from the socket once one frame is waiting.
        stuck = await Client.open(url, bearer, answer_pings=False, max_queue=1)
        stuck.reader.cancel()
        fast = await Client.open(url, bearer)
        await fast.wait_connected()
        blob = "x" * 16_000
        # Published through the runtime call (as a handler would), in bursts smaller than the
        # send queue (64) that the fast client keeps up with; fast enough that the stuck
        # client's queue overflows long before it would miss a ping.
        async with publishing_hub(stack) as hub:
            for burst in range(40):  # ~6 MB: past what the kernel buffers for the stuck client
                for n in range(burst * 10, burst * 10 + 10):
                    last = (await hub.publish(f"notifications:{me}", {"n": n, "pad": blob})).message_id
                await fast.wait_for(lambda f, last=last: f.get("message_id") == last, timeout=30)
        assert [m["data"]["n"] for m in fast.messages()] == list(range(400))
        # The stuck client, reading again, finds what was buffered and then the end: the server
        # dropped it (1013, too slow) instead of holding 400 messages for it.
        drained = 0
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(stuck.ws.recv(), 30)
                drained += 1
        assert drained < 400
        assert stuck.ws.close_code == 1013, (stuck.ws.close_code, drained)
        await fast.close()

    run(scenario())


def test_inbound_size_limit_closes_1009(instances, users):
    async def scenario():
        client = await Client.open(instances[0], token(users, "sales-manager@acme.example"))
        await client.wait_connected()
        await client.send({"type": "ping", "pad": "y" * 5000})
        assert await client.wait_closed() == 1009

    run(scenario())


def test_per_connection_message_rate_closes_4029(instances, users):
    async def scenario():
        client = await Client.open(instances[0], token(users, "sales-manager@acme.example"))
        await client.wait_connected()
        for _ in range(60):
            try:
                await client.send({"type": "ping"})
            except websockets.ConnectionClosed:
                break
        assert await client.wait_closed() == 4029
        error = await client.wait_for(lambda f: f["type"] == "error")
        assert error["code"] == 4029

    run(scenario())


def test_per_user_connection_cap_across_instances(instances, users):
    async def scenario():
        email = "employee@globex.example"
        bearer = token(users, email)
        held = []
        for n in range(12):  # the cap, spread over both instances
            client = await Client.open(instances[n % 2], bearer)
            await client.wait_connected()
            held.append(client)
        extra = await Client.open(instances[0], bearer)
        assert await extra.wait_closed() == 4029
        await held.pop().close()
        for _ in range(50):  # the lease is released as the socket closes
            again = await Client.open(instances[1], bearer)
            try:
                await again.wait_connected()
                held.append(again)
                break
            except AssertionError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("a socket was not admitted after one closed")
        for client in held:
            await client.close()

    run(scenario())


# -- 7. resume -----------------------------------------------------------------------------

def test_resume_with_since_delivers_what_was_missed_in_order_once(instances, users):
    async def scenario():
        email = "hr-manager@acme.example"
        me, bearer, admin = uid(users, email), token(users, email), token(users, "admin@acme.example")
        acme_org = org(users, email)
        client = await Client.open(instances[0], bearer)
        await client.send({"type": "subscribe", "channel": f"org:{acme_org}"})
        await client.wait_for(lambda f: f["type"] == "ack")
        for n in range(3):
            await publish(instances[1], admin, f"notifications:{me}", {"n": n})
        seen = await client.wait_for(lambda f: f.get("data") == {"n": 2})
        await client.close()
        for n in range(3, 9):  # missed: on both channels, through both instances
            await publish(instances[n % 2], admin, f"notifications:{me}" if n % 3 else f"org:{acme_org}", {"n": n})
        # Reconnect with since (first message auth); the org channel is resubscribed with since.
        back = await Client.open(instances[1], bearer, first_auth=True, since=seen["message_id"])
        await back.wait_connected()
        await back.send({"type": "subscribe", "channel": f"org:{acme_org}", "since": seen["message_id"]})
        await back.wait_for(lambda f: f.get("data") == {"n": 8})
        live = (await publish(instances[0], admin, f"notifications:{me}", {"n": 9})).json()["data"]
        await back.wait_for(lambda f: f.get("message_id") == live["message_id"])
        # In order on each channel (the org channel's replay starts when it is resubscribed).
        assert [m["data"]["n"] for m in back.messages(f"notifications:{me}")] == [4, 5, 7, 8, 9]
        assert [m["data"]["n"] for m in back.messages(f"org:{acme_org}")
                if m["data"].get("event") != "user.registered"] == [3, 6]
        # A malformed since is an error frame, not a closed socket.
        odd = await Client.open(instances[0], bearer, query="?since=yesterday")
        await odd.wait_for(lambda f: f["type"] == "error" and "since" in f["message"])
        await odd.close()
        await back.close()

    run(scenario())


def test_sigterm_closes_1001_and_clients_resume_on_the_other_instance(stack, instances, users):
    """A third instance is stopped while messages keep coming through the surviving one; its
    clients reconnect there with `since` and end up with every message exactly once."""
    async def scenario():
        process, doomed = start_gateway(realtime_env(stack), workers=2)
        survivor = instances[1]
        email = "employee@acme.example"
        me, bearer, admin = uid(users, email), token(users, email), token(users, "admin@acme.example")
        try:
            clients = [await Client.open(doomed, bearer) for _ in range(4)]
            for client in clients:
                await client.wait_connected()
            sent: list[int] = []
            stopping = asyncio.Event()

            async def publisher():
                n = 0
                while not (stopping.is_set() and n >= 60):
                    answer = await publish(survivor, admin, f"notifications:{me}", {"n": n, "sigterm": True})
                    assert answer.status_code == 202
                    sent.append(n)
                    n += 1
                    await asyncio.sleep(0.01)

            task = asyncio.get_running_loop().create_task(publisher())
            while len(sent) < 20:
                await asyncio.sleep(0.01)
            process.send_signal(signal.SIGTERM)
            codes = [await c.wait_closed(15) for c in clients]
            assert codes == [1001] * 4, codes
            stopping.set()
            resumed = []
            for client in clients:
                mine = [m for m in client.messages() if m["data"].get("sigterm")]
                since = mine[-1]["message_id"] if mine else None
                assert since is not None, "no message arrived before the stop"
                again = await Client.open(survivor, bearer, query=f"?since={since}")
                resumed.append((client, again))
            await task
            last = sent[-1]
            for before, after in resumed:
                await after.wait_for(lambda f: f.get("data", {}).get("n") == last and f["data"].get("sigterm"), 30)
                got = [m["data"]["n"] for c in (before, after) for m in c.messages() if m["data"].get("sigterm")]
                assert got == list(range(last + 1)), got
                await after.close()
            assert process.wait(20) == 0
        finally:
            stop(process)

    run(scenario())
