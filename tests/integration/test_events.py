"""Business events against a real Kafka 4.4 broker (KRaft, started here from the official jars):
the CloudEvents envelope, topics, keys and headers of every event type the gateway emits,
breaker and error events, retries and the dead-letter topic, and /ready.

Its own stack (one test breaks the hrm backend) and broker; every test its own topic prefix.
"""

from __future__ import annotations

import uuid

import grpc
import httpx
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from emulator.kafka_broker import KafkaBroker
from emulator.processes import stop
from emulator.services.faults import NO_FAULT, Fault
from tests.kafka_support import events_env, topics, wait_for
from tests.support import DEMO_PASSWORD, poll_ready, start_gateway

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"



@pytest.fixture(scope="module")
def broker():
    with KafkaBroker() as running:
        yield running


@pytest.fixture()
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def gateway(own_stack, broker, tmp_path, prefix):
    process, url = start_gateway(events_env(own_stack, broker.bootstrap, tmp_path / "spool", prefix))
    yield url
    stop(process)


def rid() -> str:
    return uuid.uuid4().hex


def test_the_topics_exist_before_the_first_event(gateway, broker, prefix):
    """The gateway creates its topics when it first reaches the broker, rather than have the
    first record auto-create one (such a topic was seen to acknowledge and lose its first
    events under load)."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    wanted = set(topics(prefix))
    poll_ready(gateway, lambda r: wanted <= set(admin.list_topics(timeout=10).topics), timeout=30)
    metadata = admin.list_topics(timeout=10)
    assert wanted <= set(metadata.topics)
    assert all(len(metadata.topics[t].partitions) == 3 for t in wanted)  # the broker's default


def test_every_event_is_a_cloudevent_on_its_topic_keyed_by_its_entity(gateway, broker, prefix):
    http = httpx.Client(base_url=gateway, timeout=10)
    ids = {}  # event type -> the request id that caused it

    def call(kind: str, method: str, path: str, **kw):
        ids[kind] = request_id = rid()
        headers = {"X-Request-ID": request_id, "traceparent": TRACEPARENT, **kw.pop("headers", {})}
        return http.request(method, path, headers=headers, **kw)

    login = call("erp.auth.login.succeeded", "POST", "/api/v1/auth/login",
                 json={"email": "admin@acme.example", "password": DEMO_PASSWORD})
    assert login.status_code == 200
    session = login.json()["data"]
    user_id, bearer = session["user"]["id"], {"Authorization": f"Bearer {session['access_token']}"}
    assert call("erp.auth.login.failed", "POST", "/api/v1/auth/login",
                json={"email": "Admin@Acme.example", "password": "wrong-password"}).status_code == 401
    email = f"owner-{uuid.uuid4().hex[:6]}@new.example"
    registered = call("erp.user.registered", "POST", "/api/v1/auth/register", json={
        "first_name": "Ada", "last_name": "Owner", "email": email, "password": "a-long-pass-123",
        "password_confirmation": "a-long-pass-123", "organization_name": "New Org", "domain": "new.example"})
    assert registered.status_code == 201, registered.text
    refreshed = call("erp.auth.token.refreshed", "POST", "/api/v1/auth/refresh",
                     json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200
    assert call("erp.auth.refresh-token.reused", "POST", "/api/v1/auth/refresh",
                json={"refresh_token": session["refresh_token"]}).status_code == 401
    second = login_as(http, "admin@acme.example")
    bearer = {"Authorization": f"Bearer {second['access_token']}"}
    created = call("erp.crm.customer.created", "POST", "/api/v1/crm/customers", headers=bearer,
                   json={"name": "Evented", "email": "ev@acme.example", "phone": "+1 555 0100", "status": "lead"})
    assert created.status_code == 201
    customer = created.json()["data"]["id"]
    assert call("erp.crm.customer.updated", "PATCH", f"/api/v1/crm/customers/{customer}", headers=bearer,
                json={"status": "active"}).status_code == 200
    assert call("erp.crm.customer.deleted", "DELETE", f"/api/v1/crm/customers/{customer}",
                headers=bearer).status_code == 200
    assert call("erp.auth.logout", "POST", "/api/v1/auth/logout", headers=bearer, json={}).status_code == 200

    names = topics(prefix)
    wanted = {(request_id, type) for type, request_id in ids.items()}
    messages = wait_for(broker.bootstrap, names,
                        lambda ms: {(m.headers.get("x-request-id"), m.event["type"]) for m in ms} >= wanted)
    # (request id, type): one request may cause more than one event, and the topics are read in
    # no particular order, so a request id alone would pick whichever came last.
    by_request = {(m.headers.get("x-request-id"), m.event["type"]): m for m in messages}

    def caused(type: str) -> dict:
        return by_request[ids[type], type].event

    expected = {  # type -> (topic, key)
        "erp.auth.login.succeeded": ("auth-events", user_id),
        "erp.auth.login.failed": ("auth-events", "admin@acme.example"),
        "erp.user.registered": ("user-events", registered.json()["data"]["user"]["id"]),
        "erp.auth.token.refreshed": ("auth-events", user_id),
        "erp.auth.refresh-token.reused": ("auth-events", None),  # the session id
        "erp.crm.customer.created": ("api-events", customer),
        "erp.crm.customer.updated": ("api-events", customer),
        "erp.crm.customer.deleted": ("api-events", customer),
        "erp.auth.logout": ("auth-events", user_id),
    }
    for type, (topic, key) in expected.items():
        message = by_request.get((ids[type], type))
        assert message is not None, f"no event for {type}; the gateway's publisher: {kafka_report(gateway)}"
        event = message.event
        assert event["type"] == type
        assert message.topic == f"{prefix}.{topic}"
        if key is not None:
            assert message.key == key and event["subject"] == key, type
        assert message.key == event["subject"]
        assert event["specversion"] == "1.0" and event["source"] == "/erp/api-gateway"
        assert event["datacontenttype"] == "application/json" and event["time"].endswith("Z")
        assert len(event["id"]) == 36 and isinstance(event["data"], dict)
        assert message.headers["content-type"].startswith("application/cloudevents+json")
        assert message.headers["traceparent"] == TRACEPARENT
    assert caused("erp.crm.customer.created")["data"]["name"] == "Evented"
    assert caused("erp.crm.customer.created")["organizationid"] == session["user"]["organization_id"]
    assert caused("erp.crm.customer.updated")["data"]["changed"] == ["status"]
    assert caused("erp.auth.login.failed")["data"]["reason"]
    assert "wrong-password" not in str(caused("erp.auth.login.failed"))
    # The consumer can read an event before the gateway has its acknowledgement (and leaves the
    # start-up spool for direct mode): /ready catches up within moments, so poll it.
    ready = poll_ready(gateway, lambda r: r.json()["data"]["dependencies"]["kafka"]["mode"] == "direct"
                       ).json()["data"]["dependencies"]["kafka"]
    assert ready["status"] == "up" and ready["mode"] == "direct" and ready["required"] is False


def kafka_report(url: str) -> dict:
    return httpx.get(url + "/ready", timeout=10).json()["data"]["dependencies"]["kafka"]


def login_as(http: httpx.Client, email: str) -> dict:
    answer = http.post("/api/v1/auth/login", json={"email": email, "password": DEMO_PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def test_an_opened_breaker_and_a_failed_request_are_events(own_stack, broker, tmp_path, prefix):
    env = events_env(own_stack, broker.bootstrap, tmp_path / "spool", prefix, ERP_GRPC_BREAKER_FAILURE_THRESHOLD="2",
                     ERP_GRPC_MAX_RETRY="0", ERP_CACHE_ENABLED="false")
    process, url = start_gateway(env)
    server = own_stack.stack.backends.servers["hrm"]
    try:
        http = httpx.Client(base_url=url, timeout=10)
        bearer = {"Authorization": f"Bearer {login_as(http, 'admin@acme.example')['access_token']}"}
        own_stack.call(setattr, server.interceptor, "fault", Fault(error_rate=1.0, error_code=grpc.StatusCode.INTERNAL))
        failed = http.get("/api/v1/hrm/employees", headers={**bearer, "X-Request-ID": (failed_id := rid())})
        assert failed.status_code == 502
        http.get("/api/v1/hrm/employees", headers=bearer)
        assert http.get("/api/v1/hrm/employees", headers=bearer).status_code == 503  # open
    finally:
        own_stack.call(setattr, server.interceptor, "fault", NO_FAULT)
        stop(process)
    names = topics(prefix)
    messages = wait_for(broker.bootstrap, names, lambda ms: {"erp.gateway.breaker.opened", "erp.error.request.failed"}
                        <= {m.event["type"] for m in ms})
    opened = [m for m in messages if m.event["type"] == "erp.gateway.breaker.opened"]
    assert len(opened) == 1 and opened[0].topic == f"{prefix}.system-events"
    assert opened[0].key == "hrm" and opened[0].event["data"]["backend"] == "hrm"
    errors = [m for m in messages if m.event["type"] == "erp.error.request.failed"]
    assert errors and all(m.topic == f"{prefix}.error-events" for m in errors)
    first = next(m for m in errors if m.key == failed_id)
    assert first.event["data"] == {"method": "GET", "path": "/api/v1/hrm/employees", "status": 502,
                                   "user_id": first.event["data"]["user_id"]}
    assert first.headers["x-request-id"] == failed_id
    # 503 (the open circuit) is not an error event: the breaker event said it once.
    assert all(m.event["data"]["status"] != 503 for m in errors)


def test_an_event_the_broker_refuses_for_good_is_dead_lettered_with_why(own_stack, broker, tmp_path, prefix):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    # api-events refuses anything over 300 bytes (MSG_SIZE_TOO_LARGE: no retry can help).
    futures = admin.create_topics([NewTopic(f"{prefix}.api-events", 1, 1, config={"max.message.bytes": "300"})])
    for future in futures.values():
        future.result(30)
    process, url = start_gateway(events_env(own_stack, broker.bootstrap, tmp_path / "spool", prefix, ERP_KAFKA_LINGER="0ms"))
    try:
        http = httpx.Client(base_url=url, timeout=10)
        session = login_as(http, "admin@acme.example")
        bearer = {"Authorization": f"Bearer {session['access_token']}"}
        created = http.post("/api/v1/crm/customers", headers=bearer, json={
            "name": "Too big to publish", "email": "big@acme.example", "phone": "+1 555 0101", "status": "lead"})
        assert created.status_code == 201  # the request never waits for, or fails with, the event
        customer = created.json()["data"]["id"]
        dead = f"{prefix}.dead-letter"
        [too_big] = wait_for(broker.bootstrap, [dead], lambda ms: len(ms) >= 1)
        assert too_big.key == customer and too_big.event["data"]["id"] == customer
        assert too_big.event["type"] == "erp.crm.customer.created"
        assert too_big.headers["x-original-topic"] == f"{prefix}.api-events"
        assert "too large" in too_big.headers["x-dead-letter-reason"].lower()
        assert too_big.headers["x-delivery-attempts"] == "1"  # refused for good: not retried
        assert too_big.headers["x-request-id"] == created.headers["X-Request-ID"]
        # Other topics are unaffected: the login went through to auth-events.
        [signed_in] = wait_for(broker.bootstrap, [f"{prefix}.auth-events"], lambda ms: len(ms) >= 1)
        assert signed_in.key == session["user"]["id"]
        counters = poll_ready(url, lambda r: r.json()["data"]["dependencies"]["kafka"]["counters"]["dead_lettered"] >= 1
                              ).json()["data"]["dependencies"]["kafka"]["counters"]
        assert counters["dead_lettered"] == 1 and counters["dropped"] == 0 and counters["produced"] == 2
    finally:
        stop(process)
