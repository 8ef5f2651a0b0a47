"""create_app(): the one Falcon ASGI app that serves every handler.

    granian --interface asgi --factory runtime.app:create_app

Configuration comes from the environment and CONFIG_FILE (runtime.config). A bad value
stops start-up with one line naming the key, the value and what was expected.
"""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from types import SimpleNamespace

import falcon
import falcon.asgi
import orjson

from runtime import errors
from runtime.config import Config, ConfigError, load_config
from runtime.endpoint import Route, discover
from runtime.methods import allowed_methods, options_responder
from runtime.middleware import GatewayMiddleware
from runtime.pipeline import JSON, responder
from runtime.realtime.socket import RealtimeEndpoint
from runtime.request_id import request_id
from runtime.security.client_guard import ClientGuard
from runtime.security.route_limits import AddressBudget

log = logging.getLogger("gateway")

def write_error(req: falcon.asgi.Request, resp: falcon.asgi.Response, error: errors.ApiError) -> None:
    rid = getattr(req.context, "request_id", None) or request_id(None)
    resp.status = error.status
    resp.content_type = JSON
    resp.data = orjson.dumps(error.body(rid))
    for name, value in error.headers.items():
        resp.set_header(name, value)


def _shown(text: str, limit: int = 100) -> str:
    """Caller input quoted in a message, bounded: an answer never echoes unbounded input."""
    return text if len(text) <= limit else text[:limit] + "..."


async def _on_api_error(req, resp, ex: errors.ApiError, params, **_):
    write_error(req, resp, ex)


async def _on_http_error(req, resp, ex: falcon.HTTPError, params, **_):
    # Falcon's own HTTP errors (routing, header parsing, any status) get our envelope codes.
    error: errors.ApiError
    if ex.status_code == 404:
        error = errors.NotFound(f"No route for {_shown(req.method)} {_shown(req.path)}")
    elif ex.status_code == 405:
        error = errors.MethodNotAllowed(f"{_shown(req.method)} is not allowed on {_shown(req.path)}")
    else:
        error = errors.for_status(ex.status_code, ex.description or ex.title)
    for name, value in dict(ex.headers or {}).items():
        error.headers.setdefault(name, value)  # e.g. Allow on 405
    write_error(req, resp, error)


async def _on_unexpected(req, resp, ex: Exception, params, **_):
    # Logged in full here; the client gets the envelope and the request id to quote.
    log.error("unhandled error", exc_info=ex, extra={"request_id": getattr(req.context, "request_id", None)})
    write_error(req, resp, errors.Internal())


def check_routes(config: Config, routes: list[Route]) -> None:
    """Names a route uses must exist in configuration: fail at start-up, not per request."""
    for route in routes:
        if route.websocket is not None and route.path == config.realtime.path.rstrip("/"):
            raise ConfigError(f"realtime.path {config.realtime.path!r} is taken by {route.name}'s WebSocket")
        for policy in filter(None, (route.cache, *route.invalidates)):
            if policy not in config.cache.policies:
                known = ", ".join(config.cache.policies)
                raise ConfigError(f"{route.method} {route.path}: unknown cache policy {policy!r} (known: {known})")


class GatewayApp:
    """The ASGI app: WebSockets on `realtime.path` go straight to the realtime endpoint (raw
    ASGI, see runtime/realtime/socket.py for why); everything else, lifespan included, to
    Falcon."""

    def __init__(self, falcon_app: falcon.asgi.App, state: SimpleNamespace) -> None:
        self.falcon = falcon_app
        self.state = state
        self.ws_path = state.config.realtime.path
        self.ws = state.realtime
        # Routes that also take WebSockets at their path (GraphQL subscriptions on /graphql).
        self.sockets = {r.path: r for r in state.routes if r.websocket is not None}

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "websocket":
            path = scope["path"].rstrip("/")
            if path == self.ws_path:
                return await self.ws(scope, receive, send)
            route = self.sockets.get(path)
            if route is not None:
                return await route.websocket(scope, receive, send, self.state.resources, route)
        return await self.falcon(scope, receive, send)


def build_app(config: Config, routes: list[Route] | None = None) -> ClientGuard:
    """The gateway app (WebSockets and Falcon) behind the per-address guard (runtime.security.client_guard)."""
    routes = discover() if routes is None else routes
    check_routes(config, routes)
    state = SimpleNamespace(resources=None, routes=routes, config=config, route_limits=[], realtime=None)
    state.realtime = RealtimeEndpoint(config, state)
    middleware = GatewayMiddleware(config, state)
    app = falcon.asgi.App(middleware=[middleware])
    app.req_options.strip_url_path_trailing_slash = True
    by_path: dict[str, list[Route]] = defaultdict(list)
    for route in routes:
        by_path[route.path].append(route)
    for path, path_routes in by_path.items():
        responders = {f"on_{r.method.lower()}": responder(r, state) for r in path_routes}
        if "on_get" in responders:
            responders["on_head"] = responders["on_get"]  # runtime.methods: HEAD is GET without the body
        responders["on_options"] = options_responder(allowed_methods([r.method for r in path_routes]), middleware)
        app.add_route(path, SimpleNamespace(**responders))
    app.add_error_handler(Exception, _on_unexpected)
    budget = AddressBudget(config)
    state.route_limits.append(budget)  # reloaded with the routes' policies

    async def on_http_error(req, resp, ex: falcon.HTTPError, params, **_):
        # Unknown routes and wrong methods never reach a route's rate limit: charge them here.
        client_ip = getattr(req.context, "client_ip", None)
        if not getattr(req.context, "rate_counted", False) and client_ip and state.resources is not None:
            req.context.rate_counted = True
            try:
                await budget.enforce(state.resources.limiter, client_ip)
            except errors.RateLimited as limited:
                write_error(req, resp, limited)
                return
        await _on_http_error(req, resp, ex, params)

    app.add_error_handler(falcon.HTTPError, on_http_error)
    app.add_error_handler(errors.ApiError, _on_api_error)
    # HTTP straight to Falcon: GatewayApp only routes WebSockets (one coroutine frame less a request).
    return ClientGuard(GatewayApp(app, state), config, http_app=app)


def create_app(config: Config | None = None) -> ClientGuard:
    try:
        return build_app(config or load_config())
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
