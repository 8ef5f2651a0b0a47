"""Traces: a request's span, its backend and Valkey calls as children, and the W3C trace
context carried into gRPC metadata so the emulated backend sees the same trace.

The span-recording tests run the gateway app in this process (falcon's ASGI conductor, real
Valkey and backends from `stack`) with the OpenTelemetry SDK's in-memory exporter: spans can
only be read back where they are recorded. The pass-through test runs the real gateway on
Granian with no SDK at all.
"""

from __future__ import annotations

from typing import ClassVar

import asyncio
import http.server
import secrets
import threading
import time
import uuid

import httpx
import pytest
from falcon.testing import ASGIConductor
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from emulator.processes import stop
from runtime.app import build_app
from runtime.config import load_config
from tests.support import DEMO_PASSWORD, granian_env, start_gateway

LIST_CUSTOMERS = "/erp.crm.v1.CrmService/ListCustomers"


@pytest.fixture(scope="module")
def exporter():
    """The SDK, installed once for this process (OpenTelemetry allows one tracer provider)."""
    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


def traces_seen(stack, service: str) -> list[tuple[str, str]]:
    return stack.call(lambda: list(stack.stack.backends.servers[service].interceptor.traces))


def run(stack, check):
    prefix = f"trace-{uuid.uuid4().hex[:8]}:"  # an empty cache: the list reaches the backend
    config = load_config(env=granian_env(stack.environment(), ERP_REDIS_KEY_PREFIX=prefix))

    async def go():
        async with ASGIConductor(build_app(config)) as conductor:
            signed_in = await conductor.simulate_post(
                "/api/v1/auth/login", json={"email": "viewer@acme.example", "password": DEMO_PASSWORD})
            assert signed_in.status_code == 200
            return await check(conductor, {"Authorization": "Bearer " + signed_in.json["data"]["access_token"]})

    return asyncio.run(go())


def test_a_callers_trace_is_continued_through_valkey_and_grpc(stack, exporter):
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    traceparent = f"00-{trace_id}-{caller_span}-01"

    async def check(conductor, auth):
        exporter.clear()
        return await conductor.simulate_get("/api/v1/crm/customers", headers={**auth, "traceparent": traceparent})

    answer = run(stack, check)
    assert answer.status_code == 200
    spans = [s for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]
    server = [s for s in spans if s.kind == SpanKind.SERVER]
    assert len(server) == 1
    request = server[0]
    assert request.name == "GET /api/v1/crm/customers"
    assert format(request.parent.span_id, "016x") == caller_span and request.parent.is_remote
    assert request.attributes["http.route"] == "/api/v1/crm/customers"
    assert request.attributes["http.response.status_code"] == 200

    by_name = {s.name: s for s in spans}
    backend = by_name["crm/ListCustomers"]
    assert backend.kind == SpanKind.CLIENT and backend.attributes["rpc.system"] == "grpc"
    cache = by_name["cache crm_customers"]
    assert cache.parent.span_id == request.context.span_id
    # request -> {rate-limit sync (the user's first request in this worker; later ones are
    # counted locally), cache read -> backend call on the miss}
    limit = by_name["valkey EVALSHA rate_limit sync"]
    assert limit.attributes["db.system"] == "valkey"
    assert backend.parent.span_id == cache.context.span_id
    assert limit.parent.span_id == request.context.span_id
    assert len(spans) == 4
    assert all(s.context.trace_id == request.context.trace_id for s in (backend, cache, limit))

    # The backend received the same trace, with the backend-call span as its parent.
    sent = [tp for method, tp in traces_seen(stack, "crm") if method == LIST_CUSTOMERS and trace_id in tp]
    assert sent == [f"00-{trace_id}-{format(backend.context.span_id, '016x')}-01"]


def test_without_traceparent_a_new_trace_starts(stack, exporter):
    async def check(conductor, auth):
        exporter.clear()
        return await conductor.simulate_get("/api/v1/auth/me", headers=auth)

    assert run(stack, check).status_code == 200
    server = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(server) == 1 and server[0].parent is None
    children = [s for s in exporter.get_finished_spans() if s.parent and s.parent.span_id == server[0].context.span_id]
    assert {s.name for s in children} >= {"cache user_profile"}


def test_an_error_answer_marks_the_request_span(stack, exporter):
    async def check(conductor, auth):
        exporter.clear()
        return await conductor.simulate_get("/api/v1/crm/customers/no-such-id", headers=auth)

    assert run(stack, check).status_code == 404
    server = next(s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert server.attributes["http.response.status_code"] == 404
    assert server.attributes["http.route"] == "/api/v1/crm/customers/{id}"


def test_without_the_sdk_the_gateway_passes_the_trace_through(stack):
    """The gateway on Granian, tracing not enabled: the caller's trace still reaches the backend."""
    process, url = start_gateway(granian_env(stack.environment(), ERP_REDIS_KEY_PREFIX=f"trace-{uuid.uuid4().hex[:8]}:"))
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            token = client.post("/api/v1/auth/login", json={"email": "viewer@acme.example", "password": DEMO_PASSWORD})
            auth = {"Authorization": "Bearer " + token.json()["data"]["access_token"]}
            traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
            assert client.get("/api/v1/crm/customers", headers={**auth, "traceparent": traceparent}).status_code == 200
            malformed = client.get("/api/v1/crm/customers?page_size=7", headers={**auth, "traceparent": "00-zz-bad"})
            assert malformed.status_code == 200  # a bad header is ignored, never an error
    finally:
        stop(process)
    assert (LIST_CUSTOMERS, traceparent) in traces_seen(stack, "crm")


class _Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: keeps every ExportTraceServiceRequest it is sent."""

    received: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_enabled_tracing_exports_over_otlp_from_granian_workers(stack):
    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}/v1/traces"
    env = granian_env(stack.environment(), ERP_OBSERVABILITY_TRACING_ENABLED="true",
                      ERP_OBSERVABILITY_TRACING_ENDPOINT=endpoint, ERP_OBSERVABILITY_TRACING_SERVICE_NAME="gw-under-test",
                      OTEL_BSP_SCHEDULE_DELAY="50")
    process, url = start_gateway(env, workers=2)
    trace_id = secrets.token_hex(16)
    try:
        answer = httpx.get(url + "/health", headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
        assert answer.status_code == 200
        deadline = time.monotonic() + 20

        def exported():
            for batch in list(_Collector.received):
                for resource_spans in batch.resource_spans:
                    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            if span.trace_id.hex() == trace_id:
                                return service, span.name
            return None

        while exported() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop(process)
        collector.shutdown()
    assert exported() == ("gw-under-test", "GET /health")
