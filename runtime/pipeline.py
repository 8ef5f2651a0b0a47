"""The ordered stages every request passes on its way to a handler (DESIGN.md section 2).

request id, logging and security headers happen in `runtime.middleware` (they apply to
unknown routes too); here, per route: authentication -> rate limit -> authorization ->
body validation -> handler -> envelope. Each stage runs only when the route declares it.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import falcon.asgi
import orjson

from runtime.context import Context
from runtime.endpoint import Route
from runtime.errors import Forbidden, Unauthenticated
from runtime.auth.tokens import bearer_token
from runtime.reply import Reply
from runtime.request_body import read_json

JSON = "application/json"


async def authenticate(req: falcon.asgi.Request, ctx: Context) -> None:
    header = req.get_header("Authorization")
    if header is None and ctx.route.auth == "optional":
        return
    resources = ctx.resources
    principal = await resources.verifier.verify(bearer_token(header))
    if await resources.revocations.is_revoked(principal.token_id):
        raise Unauthenticated("Token has been revoked")
    ctx.principal = principal
    req.context.user_id = principal.user_id


def authorize(ctx: Context, permission: str) -> None:
    principal = ctx.principal
    if principal is None:
        raise Unauthenticated()
    if not ctx.resources.policy.allows(principal.roles, permission):
        raise Forbidden(f"Your role does not grant {permission}")


def write_success(resp: falcon.asgi.Response, route: Route, result: Any) -> None:
    if isinstance(result, Reply):
        resp.status = status = result.status or route.status
        for name, value in result.headers.items():
            resp.set_header(name, value)
        if status == 304:  # Not Modified carries no body (RFC 9110 15.4.5)
            return
        # A handler may answer an error status with data (e.g. /ready's report at 503).
        doc = {"success": status < 400, "message": result.message, "data": result.data}
    else:
        resp.status = route.status
        doc = {"success": True, "message": "OK", "data": result}
    resp.data = orjson.dumps(doc)
    resp.content_type = JSON


def responder(route: Route, state: Any) -> Callable[..., Awaitable[None]]:
    """The Falcon responder for one route; `state.resources` is filled by the lifespan."""
    max_body = route.max_body_bytes

    async def respond(req: falcon.asgi.Request, resp: falcon.asgi.Response, **params: str) -> None:
        resources = state.resources
        ctx = Context(resources, route, req.context.request_id, req.remote_addr)
        if route.auth != "none":
            await authenticate(req, ctx)
        if route.permission is not None:
            authorize(ctx, route.permission)
        if route.body is not None:
            limit = max_body or resources.config.server.max_body_bytes
            ctx.body = route.body.validate(await read_json(req, limit))
        write_success(resp, route, await route.handler(req, ctx, **params))

    respond.__name__ = f"on_{route.method.lower()}"
    return respond
