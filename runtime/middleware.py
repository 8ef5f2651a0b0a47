"""The one Falcon middleware: request id, access log, security headers, lifespan.

It wraps every request, matched or not, so unknown routes and wrong methods get the same
X-Request-ID, headers and log line as handled ones.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import falcon.asgi

from runtime.config import Config
from runtime.observability.logs import configure_logging
from runtime.request_id import request_id
from runtime.resources import Resources
from runtime.security.headers import security_headers

access_log = logging.getLogger("gateway.access")


class GatewayMiddleware:
    def __init__(self, config: Config, state: Any) -> None:
        self.config = config
        self.state = state
        self.headers = security_headers(config.server.tls_enabled)

    async def process_startup(self, scope: dict, event: dict) -> None:
        configure_logging(self.config.logging.level, self.config.logging.format)
        self.state.resources = Resources(self.config)

    async def process_shutdown(self, scope: dict, event: dict) -> None:
        if self.state.resources is not None:
            await self.state.resources.close()
            self.state.resources = None

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        req.context.started = time.perf_counter()
        req.context.request_id = request_id(req.get_header("X-Request-ID"))
        req.context.user_id = None

    async def process_response(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, resource: object, req_succeeded: bool
    ) -> None:
        resp.set_header("X-Request-ID", req.context.request_id)
        for name, value in self.headers:
            resp.set_header(name, value)
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
