"""OpenTelemetry spans: one per request, one per backend call and per Valkey operation.

The runtime only uses the OpenTelemetry API. With no SDK configured the API's tracer records
nothing, and a caller's W3C `traceparent` is still passed through to the backends (the
current span is then the caller's, not recording). `observability.tracing.enabled` installs
the SDK with an OTLP/HTTP (or console) exporter in each worker (the `otel` extra); a process
that set an SDK tracer provider itself (a test with an in-memory exporter) is used as it is.

Other features put the trace context where their messages go with `inject(headers)` (Kafka
headers, WebSocket frames) and continue it with `extract(headers)`.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, ContextManager, Mapping, MutableMapping

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

log = logging.getLogger("gateway.tracing")

TRACER = trace.get_tracer("erp-gateway")
_NULL = contextlib.nullcontext()
_recording = False  # an SDK tracer provider is installed in this process
_provider: Any = None  # the one configure() installed, shut down with the worker


def recording() -> bool:
    return _recording


def configure(tracing_config: Any) -> None:
    """Once per worker, in the lifespan (after the fork: the SDK's export thread must not cross it)."""
    global _recording, _provider
    current = trace.get_tracer_provider()
    if _is_sdk(current):
        _recording = True
        return
    if not tracing_config.enabled:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    exporter: Any
    if tracing_config.exporter == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=tracing_config.endpoint or None)
    provider = TracerProvider(
        resource=Resource.create({"service.name": tracing_config.service_name}),
        sampler=ParentBased(TraceIdRatioBased(tracing_config.sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider, _recording = provider, True


def shutdown() -> None:
    """Flush what is buffered; the worker is stopping."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def _is_sdk(provider: Any) -> bool:
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def span(name: str, kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, Any] | None = None) -> ContextManager:
    """A child span of the current one, made current; nothing at all when nothing records."""
    if not _recording:
        return _NULL
    return TRACER.start_as_current_span(name, kind=kind, attributes=attributes)


def inject(carrier: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add `traceparent` (and `tracestate`) of the current span to `carrier`, if there is one."""
    if trace.get_current_span().get_span_context().is_valid:
        propagate.inject(carrier)
    return carrier


def extract(carrier: Mapping[str, str]) -> context.Context:
    return propagate.extract(carrier)


class RequestSpan:
    """The server span of one HTTP request, current from `start` to `end` (same task)."""

    __slots__ = ("span", "token")

    def __init__(self, span: trace.Span, token: Any) -> None:
        self.span, self.token = span, token

    @classmethod
    def start(cls, method: str, path: str, traceparent: str | None, tracestate: str | None) -> "RequestSpan | None":
        if not _recording and traceparent is None:
            return None  # nothing records and nothing to pass on
        carrier = {"traceparent": traceparent} if traceparent else {}
        if tracestate and traceparent:
            carrier["tracestate"] = tracestate
        parent = propagate.extract(carrier) if carrier else None
        span = TRACER.start_span(
            f"{method}", context=parent, kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        )
        return cls(span, context.attach(trace.set_span_in_context(span, parent)))

    def trace_id(self) -> str | None:
        sc = self.span.get_span_context()
        return format(sc.trace_id, "032x") if sc.is_valid else None

    def end(self, route: str | None, status: int, user_id: str | None) -> None:
        span = self.span
        if span.is_recording():
            if route is not None:
                span.update_name(f"{getattr(span, 'name', '')} {route}".strip())
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if user_id:
                span.set_attribute("user.id", user_id)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
        try:
            context.detach(self.token)
        except ValueError:  # ended in another context than it started: nothing to restore
            pass


def current_trace_id() -> str | None:
    sc = trace.get_current_span().get_span_context()
    return format(sc.trace_id, "032x") if sc.is_valid else None
