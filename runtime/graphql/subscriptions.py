"""GraphQL over WebSocket at /graphql: the `graphql-transport-ws` protocol (the graphql-ws
library's), raw ASGI like /ws (runtime/realtime/socket.py says why).

    client: connection_init {payload: {Authorization: "Bearer <token>"} | {token}}
    server: connection_ack                     (or close 4403 for a bad token)
    client: subscribe {id, payload: {query, variables?, operationName?, extensions?}}
    server: next {id, payload: {data, errors?}} ... complete {id}   | error {id, payload: [errors]}
    client: complete {id}                      (stop one operation); ping/pong either way

The token is checked like an HTTP request's (the same verifier and revocation list); the
same parsed-document cache, limits and RBAC apply to each operation. Close codes are the
protocol's: 4400 bad message, 4401 subscribe before ack, 4403 forbidden, 4406 subprotocol,
4408 no connection_init in time, 4409 duplicate id, 4429 second connection_init.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from typing import Any

import orjson
from graphql import ExecutionResult, execute, subscribe
from graphql.language import OperationType

from runtime.context import Context
from runtime.errors import ApiError, Unauthenticated
from runtime.auth.tokens import bearer_token
from runtime.graphql import limits
from runtime.graphql.errors import format_error, from_api_error, request_error
from runtime.graphql.loaders import Loaders
from runtime.graphql.service import is_awaitable
from runtime.request_id import request_id

log = logging.getLogger("gateway.graphql")

PROTOCOL = "graphql-transport-ws"
MAX_OPERATIONS = 100  # at once on one socket


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        self.code, self.reason = code, reason


async def serve(service: Any, scope: dict, receive: Any, send: Any, resources: Any, route: Any) -> None:
    """One socket, from the upgrade to the close."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if PROTOCOL not in scope.get("subprotocols", ()):
        await send({"type": "websocket.close", "code": 4406, "reason": "Subprotocol not acceptable"})
        return
    if resources is None:
        await send({"type": "websocket.close", "code": 1013, "reason": "Starting up"})
        return
    if not resources.config.graphql.enabled:
        await send({"type": "websocket.close", "code": 4404, "reason": "GraphQL is switched off"})
        return
    await send({"type": "websocket.accept", "subprotocol": PROTOCOL})
    client = (scope.get("client") or ("", 0))[0]
    session = _Session(service, resources, route, send, client)
    try:
        await session.run(receive)
    except _Close as close:
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": close.code, "reason": close.reason})
    finally:
        session.stop()


class _Session:
    def __init__(self, service: Any, resources: Any, route: Any, send: Any, client: str) -> None:
        self.service, self.resources, self.route, self._send, self.client = service, resources, route, send, client
        self.principal = None
        self.operations: dict[str, asyncio.Task] = {}
        self.lock = asyncio.Lock()

    async def send(self, doc: dict[str, Any]) -> None:
        async with self.lock:
            await self._send({"type": "websocket.send", "text": orjson.dumps(doc).decode()})

    def stop(self) -> None:
        for task in self.operations.values():
            task.cancel()

    async def run(self, receive: Any) -> None:
        timeout = self.resources.config.realtime.auth_timeout
        try:
            first = await asyncio.wait_for(self._next(receive), timeout)
        except asyncio.TimeoutError:
            raise _Close(4408, "Connection initialisation timeout") from None
        if first is None:
            return
        if first.get("type") != "connection_init":
            raise _Close(4401, "Unauthorized")
        await self._init(first.get("payload"))
        while True:
            message = await self._next(receive)
            if message is None:
                return
            await self._handle(message)

    async def _next(self, receive: Any) -> dict[str, Any] | None:
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return None
            if event["type"] != "websocket.receive":
                continue
            raw = event.get("text") if event.get("text") is not None else event.get("bytes")
            if raw is None or len(raw) > self.resources.config.realtime.max_message_bytes:
                raise _Close(4400, "Message too large or empty")
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise _Close(4400, "Invalid message received") from None
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                raise _Close(4400, "Invalid message received")
            return message

    async def _init(self, payload: Any) -> None:
        payload = payload if isinstance(payload, dict) else {}
        header = payload.get("Authorization") or payload.get("authorization")
        token = payload.get("token")
        try:
            raw = bearer_token(header) if header else token
            if not isinstance(raw, str) or not raw:
                raise Unauthenticated("connection_init needs {Authorization: 'Bearer <token>'} or {token}")
            principal = await self.resources.verifier.verify(raw)
            if await self.resources.revocations.is_revoked(*principal.revocation_ids):
                raise Unauthenticated("Token has been revoked")
        except ApiError as error:
            raise _Close(4403, f"Forbidden: {error.message}"[:120]) from None
        self.principal = principal
        await self.send({"type": "connection_ack"})

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "ping":
            await self.send({"type": "pong", **({"payload": message["payload"]} if "payload" in message else {})})
        elif kind == "pong":
            pass
        elif kind == "connection_init":
            raise _Close(4429, "Too many initialisation requests")
        elif kind == "subscribe":
            id_, payload = message.get("id"), message.get("payload")
            if not isinstance(id_, str) or not id_ or not isinstance(payload, dict):
                raise _Close(4400, "Invalid message received")
            if id_ in self.operations:
                raise _Close(4409, f"Subscriber for {id_} already exists")
            if len(self.operations) >= MAX_OPERATIONS:
                await self.send({"type": "error", "id": id_, "payload": [request_error(
                    f"At most {MAX_OPERATIONS} operations at once on one socket", "TOO_MANY_OPERATIONS")]})
                return
            task = asyncio.ensure_future(self._operation(id_, payload))
            self.operations[id_] = task
            task.add_done_callback(lambda _t, i=id_: self.operations.pop(i, None))  # type: ignore[misc]
        elif kind == "complete":
            task = self.operations.pop(str(message.get("id")), None)  # type: ignore[arg-type]
            if task is not None:
                task.cancel()
        else:
            raise _Close(4400, "Invalid message received")

    async def _still_signed_in(self) -> None:
        """Like /ws: a token that expired or was revoked (logout) ends the socket (4403)."""
        principal: Any = self.principal
        if time.time() < principal.expires_at and not await self.resources.revocations.is_revoked(
                *principal.revocation_ids):
            return
        with contextlib.suppress(Exception):
            await self._send({"type": "websocket.close", "code": 4403, "reason": "Forbidden: token expired or revoked"})
        self.stop()
        raise asyncio.CancelledError

    def _context(self) -> Context:
        ctx = Context(self.resources, self.route, request_id(None), self.client)
        ctx.principal = self.principal
        ctx.loaders = Loaders(ctx)
        return ctx

    async def _operation(self, id_: str, payload: dict[str, Any]) -> None:
        try:
            ctx = self._context()
            prepared, operation, errors = await self._prepare(payload, ctx)
            if errors:
                await self.send({"type": "error", "id": id_, "payload": errors})
                return
            schema = self.service.schema.schema
            args: dict[str, Any] = dict(context_value=ctx, variable_values=payload.get("variables"),
                                        operation_name=payload.get("operationName"))
            if operation.operation != OperationType.SUBSCRIPTION:
                result = execute(schema, prepared.document, **args, is_awaitable=is_awaitable)
                if inspect.isawaitable(result):
                    result = await result
                await self.send({"type": "next", "id": id_, "payload": _formatted(result, ctx)})
            else:
                stream = await _maybe_await(subscribe(schema, prepared.document, **args))
                if isinstance(stream, ExecutionResult):
                    await self.send({"type": "error", "id": id_,
                                     "payload": [format_error(e, ctx.request_id) for e in stream.errors or ()]})
                    return
                try:
                    async for result in stream:
                        await self._still_signed_in()
                        ctx.loaders = Loaders(ctx)  # each event resolves with fresh loaders
                        await self.send({"type": "next", "id": id_, "payload": _formatted(result, ctx)})
                finally:
                    with contextlib.suppress(Exception):
                        await stream.aclose()
            await self.send({"type": "complete", "id": id_})
        except asyncio.CancelledError:
            raise
        except Exception:  # the socket stays; this operation ends with an error
            log.exception("graphql-ws operation failed")
            with contextlib.suppress(Exception):
                await self.send({"type": "error", "id": id_, "payload": [request_error("Internal server error",
                                                                                      "INTERNAL")]})

    async def _prepare(self, payload: dict[str, Any], ctx: Context):
        worker = self.service.worker(self.resources)
        query, extensions = payload.get("query"), payload.get("extensions")
        if (query is not None and not isinstance(query, str)) or (extensions is not None and not isinstance(extensions, dict)):
            return None, None, [request_error("query must be a string, extensions an object", "BAD_REQUEST")]
        try:
            query = await self.service.persisted_query(query, extensions, worker)
        except Exception as stop:  # RequestError of the HTTP transport
            return None, None, getattr(stop, "errors", [request_error("Bad request", "BAD_REQUEST")])
        too_large = worker.documents.too_large(query)
        if too_large:
            return None, None, [too_large]
        prepared = worker.documents.prepare(query)
        if prepared.errors:
            return None, None, prepared.errors
        operation = prepared.operation(payload.get("operationName"))
        if operation is None:
            return None, None, [request_error("Unknown operation, or several without operationName", "BAD_REQUEST")]
        over = limits.check(limits.cost_of(self.service.schema.schema, prepared, operation,
                                           payload.get("variables")), worker.config)
        if over:
            return None, None, over
        if operation.operation == OperationType.MUTATION:
            try:
                self.service.check_operation(ctx, operation, prepared)
            except ApiError as error:
                return None, None, [from_api_error(error)]
        return prepared, operation, None


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _formatted(result: ExecutionResult, ctx: Context) -> dict[str, Any]:
    doc: dict[str, Any] = {"data": result.data}
    if result.errors:
        doc["errors"] = [format_error(e, ctx.request_id) for e in result.errors]
    return doc
