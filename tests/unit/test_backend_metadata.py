"""Trace context travels to the backends when an OpenTelemetry span is current."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from runtime.backends.client import trace_metadata


def test_no_current_span_adds_nothing():
    assert trace_metadata() == ()


def test_the_current_span_travels_as_traceparent():
    span = NonRecordingSpan(SpanContext(trace_id=0x0AF7651916CD43DD8448EB211C80319C, span_id=0x00F067AA0BA902B7,
                                        is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)))
    with trace.use_span(span):
        metadata = dict(trace_metadata())
    assert metadata["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"
