"""GraphQL over HTTP (the GraphQL-over-HTTP spec) at /graphql, for the two handlers there.

One request: admission (the REST pipeline's authentication and rate-limit stages, run here
so that their refusals come back as GraphQL errors) -> parameters (POST JSON body, or GET
query string) -> persisted query -> size limit -> cached parse and validation -> operation
(no mutation over GET) -> limits (depth, aliases, complexity) -> operation-level permission
check for mutations -> execution with this request's DataLoaders.

Status codes follow the spec: with `Accept: application/graphql-response+json` a request
error (nothing executed) is a 4xx; with plain `application/json` it is a 200 with `errors`.
Field errors always leave the rest of `data` intact.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import re
import weakref
from pathlib import Path
from types import CoroutineType
from typing import Any, Mapping

import falcon.asgi
import orjson
from graphql import ExecutionResult, execute
from graphql.language import FieldNode, FragmentSpreadNode, InlineFragmentNode, OperationType

from runtime.errors import ApiError
from runtime.graphql import limits
from runtime.graphql.documents import Documents, PersistedQueries, Prepared
from runtime.graphql.errors import (
    BAD_REQUEST,
    PERSISTED_QUERY_NOT_FOUND,
    format_error,
    from_api_error,
    request_error,
)
from runtime.graphql.loaders import Loaders
from runtime.graphql.registry import discover
from runtime.graphql.schema import Schema, build, check_access, load_sdl
from runtime.pipeline import authenticate
from runtime.reply import Reply
from runtime.request_body import read_json
from runtime.security.route_limits import RouteLimits, derived

GRAPHQL_RESPONSE = "application/graphql-response+json"
# What resolvers here return when they wait: coroutines and futures (DataLoader, gather).
# One isinstance instead of graphql-core's general check, which is ~10% of a small query.
_AWAITABLES = (CoroutineType, asyncio.Future)


def is_awaitable(value: Any) -> bool:
    return isinstance(value, _AWAITABLES)


JSON = "application/json"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class RequestError(Exception):
    """Stops a request before execution: `errors`, and the status for graphql-response+json
    (plain JSON clients get 200 unless `always` says the status holds for them too)."""

    def __init__(self, status: int, errors: list[dict[str, Any]], headers: Mapping[str, str] | None = None,
                 always: bool = False) -> None:
        self.status, self.errors, self.headers, self.always = status, errors, dict(headers or {}), always


def negotiate(accept: str | None) -> str | None:
    """The response media type: graphql-response+json when accepted, else JSON; None: neither."""
    if not accept:
        return JSON
    kinds = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    if GRAPHQL_RESPONSE in kinds:
        return GRAPHQL_RESPONSE
    if kinds & {JSON, "*/*", "application/*"}:
        return JSON
    return None


class _Worker:
    """What one worker keeps between requests."""

    def __init__(self, schema: Schema, resources: Any) -> None:
        config = resources.config
        self.config = config.graphql
        self.documents = Documents(schema.schema, config.graphql)
        self.persisted = PersistedQueries(resources.valkey_mux, config.redis.key_prefix,
                                          config.graphql.persisted_query_ttl)
        self.resources = resources
        self.limits: dict[tuple[str, str], RouteLimits | None] = {}

    def route_limits(self, route: Any) -> RouteLimits | None:
        key = (route.method, route.path)
        limits_: Any = self.limits.get(key, False)
        if limits_ is False:
            # The route itself is exempt from the pipeline's check; the default user or
            # anonymous budget applies here, after authentication, as it does for REST
            # (and reloads with REST's: route_limits.derived).
            limits_ = self.limits[key] = derived(self.resources, dataclasses.replace(route, rate_limit=None))
        return limits_


class GraphQLService:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._workers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @classmethod
    def load(cls, schema_dir: str | Path, resolvers_package: str) -> "GraphQLService":
        resolvers = discover(resolvers_package)
        subscribers = {key: fn for key, fn in resolvers.items() if getattr(fn, "__subscribes__", False)}
        plain = {key: fn for key, fn in resolvers.items() if key not in subscribers}
        return cls(build(load_sdl(schema_dir), plain, subscribers))

    def worker(self, resources: Any) -> _Worker:
        worker = self._workers.get(resources)
        if worker is None:
            worker = self._workers[resources] = _Worker(self.schema, resources)
        return worker

    # ------------------------------------------------------------------ HTTP

    async def handle(self, req: falcon.asgi.Request, ctx: Any) -> Reply:
        media = negotiate(req.get_header("Accept"))
        if media is None:
            return _reply(JSON, 406, {"errors": [request_error(
                f"Accept {GRAPHQL_RESPONSE} or {JSON}", "NOT_ACCEPTABLE")]})
        worker = self.worker(ctx.resources)
        headers = _Headers()
        try:
            if not worker.config.enabled:
                raise RequestError(404, [request_error("GraphQL is switched off (graphql.enabled)", "NOT_FOUND")],
                                   always=True)
            await self._authenticate(req, ctx)
            limit = _Limit(worker.route_limits(ctx.route), headers, ctx)
            try:
                params = await self._params(req, ctx)
                result = await self._run(req.method, params, ctx, worker, limit)
            except RequestError:
                await limit.enforce()  # a refusal of the request still counts, and 429 comes first
                raise
        except RequestError as stop:
            status = stop.status if (media == GRAPHQL_RESPONSE or stop.always) else 200
            return _reply(media, status, {"errors": stop.errors}, {**headers, **stop.headers})
        return _reply(media, 200, result, headers)

    async def _authenticate(self, req: falcon.asgi.Request, ctx: Any) -> None:
        try:
            if req.get_header("Authorization") is not None:
                await authenticate(req, ctx)
        except ApiError as error:
            raise RequestError(error.status, [from_api_error(error)], error.headers, always=True) from None

    async def _params(self, req: falcon.asgi.Request, ctx: Any) -> dict[str, Any]:
        if req.method == "POST":
            try:
                body = await read_json(req, ctx.resources.config.server.max_body_bytes)
            except ApiError as error:
                raise RequestError(error.status, [from_api_error(error)], error.headers, always=True) from None
            if not isinstance(body, dict):
                raise _bad("The request body must be a JSON object: {query, operationName?, variables?, extensions?}")
            return body
        params: dict[str, Any] = {}
        for name in ("query", "operationName", "variables", "extensions"):
            value = req.get_param(name)
            if value is not None and name in ("variables", "extensions"):
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError:
                    raise _bad(f"The {name} parameter must be a JSON object") from None
            params[name] = value
        return params

    async def _run(self, method: str, params: dict[str, Any], ctx: Any, worker: _Worker,
                   limit: "_Limit") -> dict[str, Any]:
        query, name = params.get("query"), params.get("operationName")
        variables, extensions = params.get("variables"), params.get("extensions")
        if query is not None and not isinstance(query, str):
            raise _bad("query must be a string")
        if name is not None and not isinstance(name, str):
            raise _bad("operationName must be a string or null")
        if variables is not None and not isinstance(variables, dict):
            raise _bad("variables must be an object or null")
        if extensions is not None and not isinstance(extensions, dict):
            raise _bad("extensions must be an object or null")
        query = await self.persisted_query(query, extensions, worker)
        too_large = worker.documents.too_large(query)
        if too_large:
            raise RequestError(400, [too_large])
        prepared = worker.documents.prepare(query)
        if prepared.errors:
            raise RequestError(400, prepared.errors)
        operation = prepared.operation(name)
        if operation is None:
            message = (f"Unknown operation named {name!r}" if name is not None
                       else "The document has several operations: say which one with operationName")
            raise _bad(message)
        kind = operation.operation
        if method != "POST" and kind != OperationType.QUERY:  # GET (and HEAD) only read
            raise RequestError(405, [request_error(f"A {kind.value} cannot be sent with GET; use POST",
                                                   "METHOD_NOT_ALLOWED")], {"Allow": "POST"}, always=True)
        if kind == OperationType.SUBSCRIPTION:
            raise _bad("Subscriptions are served over WebSocket (graphql-transport-ws) at /graphql")
        over = limits.check(limits.cost_of(self.schema.schema, prepared, operation, variables), worker.config)
        if over:
            raise RequestError(400, over)
        if kind == OperationType.MUTATION:
            try:
                self.check_operation(ctx, operation, prepared)
            except ApiError as error:
                raise RequestError(error.status, [from_api_error(error)]) from None
        ctx.loaders = Loaders(ctx)
        await limit.enforce()
        assert prepared.document is not None  # _prepare answered errors otherwise
        result = execute(self.schema.schema, prepared.document, context_value=ctx,
                         variable_values=variables, operation_name=name, is_awaitable=is_awaitable)
        if inspect.isawaitable(result):
            result = await result
        return self._response(result, ctx)

    async def persisted_query(self, query: str | None, extensions: dict[str, Any] | None, worker: _Worker) -> str:
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            if query is None:
                raise _bad("query is required")
            return query
        sha = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha) or persisted.get("version", 1) != 1:
            raise _bad("extensions.persistedQuery must be {version: 1, sha256Hash: <64 lowercase hex digits>}")
        if query is None:
            query = await worker.persisted.lookup(sha)
            if query is None:
                raise RequestError(200, [request_error("PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND)])
            return query
        if PersistedQueries.digest(query) != sha:
            raise _bad("provided sha does not match query")
        await worker.persisted.register(sha, query)
        return query

    def check_operation(self, ctx: Any, operation: Any, prepared: Prepared) -> None:
        """A mutation runs whole or not at all: every root field's permission, before any
        runs (raises the ApiError of the first refused field)."""
        for field in _root_fields(operation.selection_set, prepared.fragments):
            rule = self.schema.rule("Mutation", field)
            if rule is not None:
                check_access(ctx, rule)

    async def websocket(self, scope: dict, receive: Any, send: Any, resources: Any, route: Any) -> None:
        """Subscriptions (and queries) over graphql-transport-ws: runtime.graphql.subscriptions."""
        from runtime.graphql.subscriptions import serve

        await serve(self, scope, receive, send, resources, route)

    def _response(self, result: ExecutionResult, ctx: Any) -> dict[str, Any]:
        errors = [format_error(e, ctx.request_id) for e in result.errors or ()]
        if result.data is None and errors and all(e.path is None for e in result.errors or ()):
            raise RequestError(400, errors)  # e.g. variables that do not fit their types
        doc: dict[str, Any] = {"data": result.data}
        if errors:
            doc["errors"] = errors
        return doc


def _root_fields(selection_set: Any, fragments: Mapping[str, Any], seen: frozenset = frozenset()) -> list[str]:
    names = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            names.append(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            names += _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                names += _root_fields(fragment.selection_set, fragments, seen | {selection.name.value})
    return names


class _Limit:
    """The request's rate-limit check, run exactly once: before execution, or when the
    request is refused before it (a refusal still counts)."""

    def __init__(self, limits: Any, headers: Any, ctx: Any) -> None:  # RouteLimits | None, _Headers
        self.limits, self.headers, self.ctx, self.done = limits, headers, ctx, limits is None

    async def enforce(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            # As REST's pipeline: a synced policy within this worker's allowance is decided
            # without a coroutine; only what needs Valkey awaits.
            if not self.limits.enforce_local(self.headers, self.ctx):
                await self.limits.enforce(self.headers, self.ctx)
        except ApiError as error:
            raise RequestError(error.status, [from_api_error(error)], error.headers, always=True) from None


class _Headers(dict):
    """Collects what a pipeline stage would set on the Falcon response (RateLimit-*)."""

    def set_headers(self, headers: Mapping[str, str]) -> None:
        self.update(headers)


def _bad(message: str) -> RequestError:
    return RequestError(400, [request_error(message, BAD_REQUEST)], always=True)


def _reply(media: str, status: int, doc: dict[str, Any], headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(orjson.dumps(doc), status=status, headers=dict(headers or {}),
                 media_type=f"{media}; charset=utf-8")
