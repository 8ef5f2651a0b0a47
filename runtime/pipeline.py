"""The ordered stages every request passes on its way to a handler (DESIGN.md section 2).

request id, logging and security headers happen in `runtime.middleware` (they apply to
unknown routes too); here, per route: authentication -> rate limit -> authorization ->
body validation -> cache (reads) -> handler -> invalidation (writes) -> envelope. Each
stage runs only when the route declares it.

The rate limit (runtime.security.route_limits) runs right after authentication, because
its default budget is per user, and before the body is read; a named policy keyed on the
body (login: email and client IP) is checked again right after body validation. A request
whose authentication fails spends the anonymous budget of its address.

A cached read pays no Valkey round trip in the usual case: the rate limit is counted in the
worker (runtime.security.synced_limits) and the entry comes from the near cache
(runtime.near_cache). So the stages simply run in order; the read-ahead that used to send the
rate-limit script and the cache read in one write was removed once it no longer paid
(loadtests/README.md: 34 µs CPU per /me without it, 37-39 with it).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode

import falcon.asgi
import orjson
from falcon.uri import parse_query_string

from runtime.context import Context
from runtime.endpoint import PATH_PARAMETER, Route
from runtime.errors import Forbidden, Unauthenticated, ValidationFailed
from runtime.auth.tokens import bearer_token
from runtime.idempotency import HEADER, applies as idempotency_applies
from runtime.observability import tracing
from runtime.rbac import grants_allow
from runtime.reply import Reply
from runtime.security.route_limits import RouteLimits
from runtime.request_body import read_json

JSON = "application/json"
_VALKEY = {"db.system": "valkey"}  # span attributes
_NO_SPAN = contextlib.nullcontext()


async def authenticate(req: falcon.asgi.Request, ctx: Context) -> None:
    header = req.get_header("Authorization")
    if header is None and ctx.route.auth == "optional":
        return
    resources = ctx.resources
    principal = await resources.verifier.verify(bearer_token(header))
    if await resources.revocations.is_revoked(*principal.revocation_ids):
        raise Unauthenticated("Token has been revoked")
    ctx.principal = principal
    req.context.user_id, req.context.organization_id = principal.user_id, principal.organization_id


def authorize(ctx: Context, permission: str) -> None:
    principal = ctx.principal
    if principal is None:
        raise Unauthenticated()
    if principal.permissions is not None:  # a service account: its own grants, no roles
        if not grants_allow(principal.permissions, permission):
            raise Forbidden(f"This service account is not granted {permission}")
    elif not ctx.resources.policy.allows(principal.roles, permission):
        raise Forbidden(f"Your role does not grant {permission}")


# Ids as they come (uuids, numbers, slugs): certainly within PATH_PARAMETER's limits, so one
# regular expression answers for them and PATH_PARAMETER.check only sees the rest.
_PLAIN_ID = re.compile(r"[A-Za-z0-9._~-]{1,64}")


def check_path(params: dict[str, str]) -> None:
    """Path parameters within PATH_PARAMETER's limits; the problem names the parameter, never echoes it."""
    for name, value in params.items():
        if _PLAIN_ID.fullmatch(value):
            continue
        problem = PATH_PARAMETER.check(value)
        if problem:
            raise ValidationFailed(errors={name: [problem]})


_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 13.1.2: `*` matches any current representation; otherwise any listed tag,
    compared weakly (a W/ prefix is ignored), as If-None-Match requires."""
    if if_none_match.strip() == "*":
        return True
    return etag in _ENTITY_TAG.findall(if_none_match)


def write_success(resp: falcon.asgi.Response, route: Route, result: Any, *, if_none_match: str | None = None) -> None:
    if isinstance(result, Reply):
        resp.status = status = result.status or route.status
        for name, value in result.headers.items():
            resp.set_header(name, value)
        if status == 304:  # Not Modified carries no body (RFC 9110 15.4.5)
            return
        if result.media_type is not None:  # a finished document, not enveloped (/openapi.json)
            resp.data, resp.content_type = result.data, result.media_type
            return
        # A handler may answer an error status with data (e.g. /ready's report at 503).
        doc = {"success": status < 400, "message": result.message, "data": result.data}
    else:
        resp.status = route.status
        doc = {"success": True, "message": "OK", "data": result}
    body = orjson.dumps(doc)
    if route.etag and resp.status == 200:
        # Strong: a hash of the exact bytes, so a cached and a fresh answer validate alike.
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        headers = resp._headers  # Falcon's, by lower-case name (set_header's checks cost ~1 µs)
        headers["etag"] = etag
        # Clients may keep it but must revalidate: the ETag is only useful if it is stored.
        headers["cache-control"] = "private, no-cache"
        if if_none_match and etag_matches(if_none_match, etag):
            resp.status = 304
            return
    resp.data = body
    resp.content_type = JSON


_MAX_NAMED = 20  # unknown parameters named in one error: the answer stays small whatever is sent


def validate_query(req: falcon.asgi.Request, route: Route) -> dict[str, Any] | None:
    """The route's declared query parameters, validated; any other parameter (blank ones too,
    `?x=` or `?x`) is a 400 naming it, on every route, so that nothing undeclared can reach a
    cache key or a handler."""
    if req.query_string:
        declared = route.query.fields if route.query is not None else {}
        unknown = [n for n in parse_query_string(req.query_string, keep_blank=True) if n not in declared]
        if unknown:
            raise ValidationFailed("Unknown query parameter", errors={
                n[:100]: ["is not a recognised query parameter"] for n in unknown[:_MAX_NAMED]})
    return route.query.validate_query(req.params) if route.query is not None else None


def _resource_key(req: falcon.asgi.Request, ctx: Context) -> str:
    """Path plus the validated query in canonical form (sorted, parsed values, defaults filled
    in), so ?a=1&b=2, ?b=2&a=1 and ?page_size=020 share the entry of their equivalents."""
    if not ctx.query:
        return req.path
    return req.path + "?" + urlencode(sorted(ctx.query.items()), doseq=True)


async def call_handler(req: falcon.asgi.Request, resp: falcon.asgi.Response, ctx: Context, params: dict) -> Any:
    """The handler, through the cache when the route declares a policy."""
    route, cache = ctx.route, ctx.resources.cache
    if cache is None or ctx.principal is None:
        return await route.handler(req, ctx, **params)
    if route.cache is not None:

        async def load() -> Any:
            # Shared with every request of this worker waiting for the same entry: it runs as a
            # task with a budget of its own (Cache.fetch), not this request's remaining one.
            result = await route.handler(req, ctx.detached(), **params)
            if isinstance(result, Reply):
                raise TypeError(f"{route.name}: a cached route returns plain data, not a Reply")
            return result

        with tracing.span(f"cache {route.cache}", attributes=_VALKEY) if tracing.recording() else _NO_SPAN:
            result, hit = await cache.fetch(ctx, route.cache, _resource_key(req, ctx), load)
        resp.set_header("X-Cache", "HIT" if hit else "MISS")
        return result
    result = await route.handler(req, ctx, **params)
    if route.invalidates:
        with tracing.span("cache invalidate", attributes=_VALKEY):
            await cache.invalidate(ctx, route.invalidates)
    return result


def responder(route: Route, state: Any) -> Callable[..., Awaitable[None]]:
    """The Falcon responder for one route; `state.resources` is filled by the lifespan."""
    max_body = route.max_body_bytes
    limits = RouteLimits.for_route(route, state.config)  # a bad declaration stops start-up here
    if limits is not None:
        state.route_limits.append(limits)  # for hot reload (runtime.reload)
    idempotent = idempotency_applies(route)

    async def respond(req: falcon.asgi.Request, resp: falcon.asgi.Response, **params: str) -> None:
        resources = state.resources
        context = req.context
        ctx = Context(resources, route, context.request_id, context.client_ip)
        context.rate_counted = limits is not None
        ctx.traceparent = context.traceparent  # read by the middleware
        if route.auth != "none":
            try:
                await authenticate(req, ctx)
            except Unauthenticated:
                if limits is not None:  # a failed sign-in is anonymous: it spends the address's budget
                    await limits.enforce_anonymous(resp, ctx)
                raise
        if limits is not None and not limits.enforce_local(resp, ctx):  # before the body: a refused
            await limits.enforce(resp, ctx)  # client never gets to send one
        if route.permission is not None:
            authorize(ctx, route.permission)
        if route.body is not None:
            limit = max_body or resources.config.server.max_body_bytes
            ctx.body = route.body.validate(await read_json(req, limit))
            if limits is not None and limits.needs_body:
                await limits.enforce_body(resp, ctx)
        if route.query is not None or req.query_string:
            ctx.query = validate_query(req, route)
        if params:
            check_path(params)
        if idempotent and resources.idempotency is not None and req.get_header(HEADER) is not None:
            async def handle() -> None:
                write_success(resp, route, await call_handler(req, resp, ctx, params))

            await resources.idempotency.run(req, resp, ctx, ctx.body, handle)
            return
        result = await call_handler(req, resp, ctx, params)
        write_success(resp, route, result, if_none_match=req.get_header("If-None-Match"))

    respond.__name__ = f"on_{route.method.lower()}"
    return respond
