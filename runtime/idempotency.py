"""Idempotency-Key on writes (draft-ietf-httpapi-idempotency-key-header): a retried POST or
PATCH gets the first attempt's answer instead of a second backend write.

The first request with a key claims it in Valkey (SET NX, with a lock that expires after the
request budget, so a worker that dies mid-request frees it) and runs; its answer (status,
body, Location/ETag/Content-Type) is kept for `idempotency.ttl` unless it is a 5xx, which
releases the key so the client may retry. A repeat with the same key and the same request
waits up to `idempotency.wait` for the first to finish and then gets its answer, marked
`Idempotent-Replayed: true`; one still running after that is 409. The same key with a
different request (method, route, path or body) is 422. Keys are scoped to the caller's
organization and principal, hashed in the Valkey key, and bounded in length. A replay runs
no handler, so it makes no backend call, invalidates nothing and emits no event.

Only signed-in routes take part: an anonymous caller has no scope to keep a key in.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any, Awaitable, Callable

import falcon.asgi
import orjson

from runtime.context import Context
from runtime.errors import ApiError, BackendUnavailable, Conflict, UnprocessableContent, ValidationFailed

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEPT_HEADERS = ("Location", "ETag", "Content-Type")
METHODS = frozenset({"POST", "PATCH"})
_POLL = 0.02  # seconds between looks at a running request's key


def applies(route: Any) -> bool:
    return route.method in METHODS and route.auth == "required"


def parse_key(raw: str, max_length: int) -> str:
    """The key as sent: an sf-string (`"abc"`) or, as most clients send it, a bare token."""
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key:
        raise ValidationFailed.field(HEADER, "must not be empty")
    if len(key) > max_length:
        raise ValidationFailed.field(HEADER, f"must be at most {max_length} characters")
    if not all(0x21 <= ord(c) <= 0x7E for c in key):
        raise ValidationFailed.field(HEADER, "must be printable ASCII without spaces")
    return key


class IdempotencyStore:
    """Claims, waits for and keeps answers in Valkey through the request-path client."""

    def __init__(self, valkey: Any, key_prefix: str, config: Any, lock_seconds: float) -> None:
        self.valkey = valkey
        self.prefix = key_prefix + "idem:"
        self.ttl_ms = int(config.ttl * 1000)
        self.wait = config.wait
        self.max_key_length = config.max_key_length
        self.lock_ms = int(lock_seconds * 1000) + 1000

    def _slot(self, ctx: Context, key: str) -> str:
        p = ctx.principal
        assert p is not None  # only signed-in writes carry an Idempotency-Key
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{self.prefix}{p.organization_id}:{p.user_id}:{digest}"

    async def _call(self, *args: Any) -> Any:
        try:
            return await self.valkey.execute(*args)
        except Exception as exc:  # the store is what makes the promise: no store, no write
            raise BackendUnavailable("Idempotency keys cannot be checked right now; retry later") from exc

    async def run(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, ctx: Context, body: Any,
        handle: Callable[[], Awaitable[None]],
    ) -> None:
        key = parse_key(req.get_header(HEADER) or "", self.max_key_length)
        slot = self._slot(ctx, key)
        fingerprint = hashlib.sha256(orjson.dumps(
            [req.method, ctx.route.path, req.path, body], option=orjson.OPT_SORT_KEYS)).hexdigest()
        claim = orjson.dumps({"fp": fingerprint, "state": "running"})
        deadline = time.monotonic() + self.wait
        while await self._call("SET", slot, claim, "NX", "PX", self.lock_ms) is None:
            stored = await self._await_answer(slot, fingerprint, deadline)
            if stored is not None:
                self._replay(resp, stored)
                return
            # The first attempt failed (5xx) or died and released the key: this one runs.
        try:
            await handle()
        except ApiError as error:
            if error.status >= 500:
                await self._release(slot)
            else:
                rid = req.context.request_id
                await self._keep(slot, fingerprint, error.status, orjson.dumps(error.body(rid)),
                                 {"Content-Type": "application/json", **error.headers})
            raise
        except BaseException:  # a crash or a cancelled request: nothing to replay, retry allowed
            await asyncio.shield(self._release(slot))
            raise
        if resp.status_code >= 500:
            await self._release(slot)
            return
        headers = {name: value for name in KEPT_HEADERS if (value := resp.get_header(name)) is not None}
        await self._keep(slot, fingerprint, resp.status_code, resp.data or b"", headers)

    async def _await_answer(self, slot: str, fingerprint: str, deadline: float) -> dict | None:
        """The first attempt's answer once it is kept; None when the key was released."""
        while True:
            raw = await self._call("GET", slot)
            if raw is None:
                return None
            stored = orjson.loads(raw)
            if stored["fp"] != fingerprint:
                raise UnprocessableContent(errors={HEADER: ["was already used with a different request"]})
            if stored["state"] == "done":
                return stored
            if time.monotonic() >= deadline:
                raise Conflict("A request with this Idempotency-Key is still in progress",
                               headers={"Retry-After": "1"})
            await asyncio.sleep(_POLL)

    async def _keep(self, slot: str, fingerprint: str, status: int, body: bytes, headers: dict) -> None:
        answer = {"fp": fingerprint, "state": "done", "status": status, "body": body.decode(), "headers": headers}
        await self._call("SET", slot, orjson.dumps(answer), "PX", self.ttl_ms)

    async def _release(self, slot: str) -> None:
        try:
            await self.valkey.execute("DEL", slot)
        except Exception:
            pass  # the lock expires by itself after the request budget

    @staticmethod
    def _replay(resp: falcon.asgi.Response, stored: dict) -> None:
        resp.status = stored["status"]
        for name, value in stored["headers"].items():
            resp.set_header(name, value)
        resp.data = stored["body"].encode()
        resp.set_header(REPLAYED, "true")
