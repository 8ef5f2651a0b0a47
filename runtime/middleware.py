"""The one Falcon middleware: request id, client IP, metrics, trace span, access log, security
headers, CORS, lifespan.

It wraps every request, matched or not, so unknown routes and wrong methods get the same
X-Request-ID, headers and log line as handled ones. CORS preflights are answered by each
path's OPTIONS responder (runtime.methods), which knows the path's methods; like OPTIONS,
they never reach authentication.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from typing import Any

import falcon.asgi

from runtime.config import Config, pending_keys
from runtime.observability import metrics, shipper, tracing
from runtime.observability.access_log import log_access
from runtime.observability.logs import configure_logging
from runtime.realtime import shutdown
from runtime.request_id import request_id
from runtime.reload import ConfigReloader, swap_policies
from runtime.resources import Resources
from runtime.security.client_guard import CLIENT_IP
from runtime.security.client_ip import ClientIp
from runtime.security.cors import Cors
from runtime.security.request_size import check_request_size
from runtime.security.headers import security_headers

log = logging.getLogger("gateway")


def _add_headers(resp: falcon.asgi.Response, headers: list[tuple[str, str]]) -> None:
    for name, value in headers:
        if name == "Vary":  # added to, not replaced: a route may vary on more
            resp.append_header(name, value)
        else:
            resp.set_header(name, value)


def _log_pending(config: Config) -> None:
    """Say which accepted keys do nothing yet: a warning for those set on purpose."""
    pending = pending_keys(config)
    chosen = [f"{key} ({source})" for key, _, source in pending if source != "default"]
    if chosen:
        log.warning("configuration keys set but not acted on yet: " + ", ".join(chosen))
    if pending:
        log.info("configuration keys not acted on yet (see `gw config`): " + ", ".join(k for k, _, _ in pending))


class GatewayMiddleware:
    def __init__(self, config: Config, state: Any) -> None:
        self.config = config
        self.state = state
        self.headers = tuple((name.lower(), value) for name, value in security_headers(config.server.tls_enabled))
        self.client_ip = ClientIp(config.server.trusted_proxies)
        self.cors = Cors(config.cors)
        self.metrics = config.observability.metrics.enabled
        self.shipper: shipper.ShipperHandler | None = None

    async def process_startup(self, scope: dict, event: dict) -> None:
        settings = self.config.logging
        configure_logging(settings.level, settings.format, settings.stream)
        self.shipper = shipper.install(settings.elasticsearch)
        _log_pending(self.config)
        tracing.configure(self.config.observability.tracing)
        if self.metrics:
            metrics.worker_started()
        self.state.resources = Resources(self.config)
        await self.state.resources.start()
        if getattr(self.state, "realtime", None) is not None:
            self.state.realtime.start(self.state.resources)
            shutdown.install(self.state.realtime.close_all)
        self.reloader = None
        path = os.environ.get("CONFIG_FILE")
        if path and self.config.server.reload_interval > 0:
            self.reloader = ConfigReloader(path, self.config.server.reload_interval, self.config,
                                           swap_policies(self, self.state))
            self.reloader.start()
        # What start-up built lives as long as the worker: out of the collector's sight, a full
        # collection under load walks only what requests made (measured in a loaded Granian
        # worker: GC time per request ~1.2 -> ~0.5 µs, and shorter full-collection pauses).
        gc.collect()
        gc.freeze()

    async def process_shutdown(self, scope: dict, event: dict) -> None:
        if getattr(self.state, "realtime", None) is not None:
            # Sockets first, with 1001: clients reconnect to another instance and resume.
            await self.state.realtime.close_all()
        reloader = getattr(self, "reloader", None)
        if reloader is not None:
            await reloader.close()
        if self.state.resources is not None:
            await self.state.resources.close()
            self.state.resources = None
        if self.metrics:
            metrics.worker_stopped()
        tracing.shutdown()
        if self.shipper is not None:
            await self.shipper.stop()

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        ctx = req.context
        ctx.started = time.perf_counter()
        ctx.request_id = request_id(req.get_header("X-Request-ID"))
        ctx.user_id = ctx.organization_id = None
        # Read once here; the pipeline passes it on to events (runtime.pipeline).
        ctx.traceparent = traceparent = req.get_header("traceparent")
        ctx.span = None if traceparent is None and not tracing.recording() else tracing.RequestSpan.start(
            req.method, req.path, traceparent, req.get_header("tracestate"))
        if self.metrics:
            metrics.request_started()
        # Resolved once by the ASGI guard in front (runtime.security.client_guard).
        scope = req.scope
        ctx.client_ip = scope.get(CLIENT_IP) or self.client_ip.resolve(
            req.remote_addr, req.get_header("X-Forwarded-For"))
        check_request_size(scope)  # 414 / 431 in the envelope, before any other work

    async def process_response(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, resource: object, req_succeeded: bool
    ) -> None:
        # Falcon keeps response headers in `_headers`, by lower-case name: written directly,
        # the security headers cost one dict operation each instead of get_header + set_header
        # (~2.5 µs a request; tests/integration check every header on every kind of answer).
        headers = resp._headers
        headers["x-request-id"] = req.context.request_id
        for name, value in self.headers:
            headers.setdefault(name, value)  # a route's own choice (e.g. Cache-Control) stands
        origin = req.get_header("Origin")
        if origin is not None and not getattr(req.context, "preflight", False):
            _add_headers(resp, self.cors.actual(origin))
        self._observe(req, resp)

    def _observe(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Metrics, the request's span and its access log line: one of each per request."""
        ctx = req.context
        elapsed = time.perf_counter() - ctx.started
        status = resp.status_code
        # The route template, never the raw path: ids would make every path a new series.
        route = req.uri_template or "(unmatched)"
        if self.metrics:
            metrics.observe_request(route, req.method, status, elapsed)
        span = ctx.span
        trace_id = None
        if span is not None:
            trace_id = span.trace_id()
            span.end(req.uri_template, status, ctx.user_id)
        events = self.state.resources.events if self.state.resources is not None else None
        if status >= 500 and status != 503 and events is not None:
            # Our failures (500, 502, 504), for whoever watches errors; 503 is overload or a
            # dependency down, reported by breaker events and /ready rather than per request.
            events.emit(
                "erp.error.request.failed", subject=ctx.request_id, request_id=ctx.request_id,
                data={"method": req.method, "path": req.path, "status": status, "user_id": ctx.user_id})
        log_access(ctx.request_id, req.method, req.path, status, elapsed, route=route, client_ip=ctx.client_ip,
                   trace_id=trace_id, user_id=ctx.user_id, organization_id=ctx.organization_id)
