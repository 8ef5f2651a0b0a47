"""HEAD and OPTIONS on every route (RFC 9110 9.3.2 and 9.3.7), and CORS preflights per route.

HEAD runs the GET responder itself (same pipeline, same headers: Falcon sends no body for
HEAD and keeps the Content-Length), so a probe with HEAD sees exactly what GET would. A plain
OPTIONS answers 204 with the path's `Allow`; a CORS preflight (OPTIONS with Origin and
Access-Control-Request-Method) answers with only the methods the path has. Neither reaches
authentication: a browser never sends credentials with a preflight.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import falcon.asgi
import orjson

from runtime.errors import Forbidden
from runtime.security.cors import Cors


def allowed_methods(methods: list[str]) -> list[str]:
    """What a path allows, sorted like Falcon's own 405 answer so that both say the same."""
    found = set(methods) | {"OPTIONS"}
    if "GET" in found:
        found.add("HEAD")
    return sorted(found)


def options_responder(methods: list[str], holder: Any) -> Callable[..., Awaitable[None]]:
    """`holder.cors`: the current CORS policy (read per request: runtime.reload swaps it)."""
    allow = ", ".join(methods)

    async def on_options(req: falcon.asgi.Request, resp: falcon.asgi.Response, **params: Any) -> None:
        origin = req.get_header("Origin")
        if origin is not None and req.get_header("Access-Control-Request-Method"):
            _preflight(req, resp, holder.cors, origin, methods)
            return
        resp.status = 204
        resp.set_header("Allow", allow)

    return on_options


def _preflight(req: falcon.asgi.Request, resp: falcon.asgi.Response, cors: Cors, origin: str,
               methods: list[str]) -> None:
    req.context.preflight = True  # the middleware adds no actual-request CORS headers
    allowed = cors.preflight(origin, req.get_header("Access-Control-Request-Headers"), methods)
    if allowed is None:
        resp.status = 403
        resp.content_type = "application/json"
        resp.data = orjson.dumps(Forbidden("This origin is not allowed").body(req.context.request_id))
        resp.append_header("Vary", "Origin")
        return
    resp.status = 204
    for name, value in allowed:
        if name == "Vary":  # added to, not replaced
            resp.append_header(name, value)
        else:
            resp.set_header(name, value)
