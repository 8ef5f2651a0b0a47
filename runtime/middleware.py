"""The one Falcon middleware: request id, client IP, access log, security headers, CORS, lifespan.

It wraps every request, matched or not, so unknown routes and wrong methods get the same
X-Request-ID, headers and log line as handled ones. CORS preflights are answered by each
path's OPTIONS responder (runtime.methods), which knows the path's methods; like OPTIONS,
they never reach authentication.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import falcon.asgi

from runtime.config import Config, pending_keys
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

access_log = logging.getLogger("gateway.access")
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
        self.headers = security_headers(config.server.tls_enabled)
        self.client_ip = ClientIp(config.server.trusted_proxies)
        self.cors = Cors(config.cors)

    async def process_startup(self, scope: dict, event: dict) -> None:
        configure_logging(self.config.logging.level, self.config.logging.format)
        _log_pending(self.config)
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

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        req.context.started = time.perf_counter()
        req.context.request_id = request_id(req.get_header("X-Request-ID"))
        req.context.user_id = None
        # Resolved once by the ASGI guard in front (runtime.security.client_guard).
        req.context.client_ip = req.scope.get(CLIENT_IP) or self.client_ip.resolve(
            req.remote_addr, req.get_header("X-Forwarded-For"))
        check_request_size(req.scope)  # 414 / 431 in the envelope, before any other work

    async def process_response(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, resource: object, req_succeeded: bool
    ) -> None:
        resp.set_header("X-Request-ID", req.context.request_id)
        for name, value in self.headers:
            if resp.get_header(name) is None:  # a route's own choice (e.g. Cache-Control) stands
                resp.set_header(name, value)
        origin = req.get_header("Origin")
        if origin is not None and not getattr(req.context, "preflight", False):
            _add_headers(resp, self.cors.actual(origin))
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "request",
                extra={
                    "request_id": req.context.request_id,
                    "method": req.method,
                    "path": req.path,
                    "status": resp.status,
                    "duration_ms": round((time.perf_counter() - req.context.started) * 1000, 3),
                    "user_id": req.context.user_id,
                },
            )
