"""The ASGI layer in front of Falcon: what one client address may hold, and how long a body may take.

Why here and not in Falcon middleware: Granian holds one permit per connection (its
`--backpressure`, by default backlog/workers) from accept to close, so a client that sends
its headers and then trickles the body a byte every few seconds keeps a permit for as long
as the application waits for that body. About a thousand such connections from one address
took every permit of both workers and `/health` stopped answering. This layer:

- caps the requests one client address has in progress at once (`limits.max_in_flight_per_address`,
  per worker). The next one is answered 429 at once, before its body is read, with
  `Connection: close`, which also ends the connection and gives its permit back;
- puts one deadline on the whole body (`server.read_timeout` from when the request came in):
  a body that has not arrived by then is answered 408. Granian's own header read timeout
  (set from the same key by `gw serve`, see README) covers the headers;
- answers a body whose framing is broken (a bad chunk size: Granian then reports a
  disconnect in the middle of the body) with 400 in the envelope instead of a bare 500;
- serves HTTP/1.0: Granian names it "1" in the scope, which Falcon refuses with a traceback.

The per-address count is per worker (no round trip), which is what a permit is.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

import orjson

from runtime.errors import ApiError, HttpVersionNotSupported, RateLimited, RequestTimeout, ValidationFailed
from runtime.expect_continue import deferred
from runtime.observability.access_log import log_access
from runtime.request_id import request_id
from runtime.security.client_ip import ClientIp
from runtime.security.headers import security_headers

# The resolved client address travels to Falcon in the scope, so it is worked out once.
CLIENT_IP = "gateway.client_ip"
_VERSIONS = {"1": "1.0", "1.0": "1.0", "1.1": "1.1", "2": "2"}

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class BrokenBody(ValidationFailed):
    """The body ended before its declared end, or its chunked framing is malformed."""

    def __init__(self) -> None:
        super().__init__("The request body is incomplete or its framing is malformed",
                         errors={"body": ["ended early or is not validly framed"]},
                         headers={"Connection": "close"})


class BodyDeadlines:
    """One deadline over each body, without a timer per request: a timer costs ~30 us under
    uvloop, so instead the waits in progress are registered here and one sweep per worker
    (every SWEEP_EVERY s) cancels those past their deadline; the cancelled wait becomes 408."""

    SWEEP_EVERY = 0.25

    def __init__(self) -> None:
        self.waiting: dict[asyncio.Task, float] = {}
        self.expired: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None

    def reader(self, receive: Receive, deadline: float) -> Receive:
        """`receive` with `deadline` (loop time) over the whole body; after the body, as is."""
        finished = False
        loop = asyncio.get_running_loop()
        if self._sweeper is None or self._sweeper.done() or self._sweeper.get_loop() is not loop:
            self._sweeper = loop.create_task(self._sweep())

        async def read() -> dict:
            nonlocal finished
            if finished:  # e.g. a framework waiting for the disconnect: no deadline applies
                return await receive()
            task = asyncio.current_task()
            if task is None or asyncio.get_running_loop().time() >= deadline:
                raise RequestTimeout("The request body did not arrive in time")
            self.waiting[task] = deadline
            try:
                message = await receive()
            except asyncio.CancelledError:
                if task not in self.expired:
                    raise
                self.expired.discard(task)
                task.uncancel()
                raise RequestTimeout("The request body did not arrive in time") from None
            finally:
                self.waiting.pop(task, None)
            if message["type"] == "http.disconnect":
                raise BrokenBody()
            if not message.get("more_body", False):
                finished = True
            return message

        return read

    def close(self) -> None:
        if self._sweeper is not None and not self._sweeper.done():
            self._sweeper.cancel()
        self._sweeper = None

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.SWEEP_EVERY)
            now = loop.time()
            for task in [t for t, deadline in self.waiting.items() if deadline <= now]:
                del self.waiting[task]
                self.expired.add(task)
                task.cancel()


def _framing(headers: Any) -> tuple[bool, bool]:
    """(whether the request declares a body, whether it asks `Expect: 100-continue`), in one pass."""
    body = expect = False
    for name, value in headers:
        if name == b"content-length":
            body = body or value.strip() != b"0"
        elif name == b"transfer-encoding":  # overrides any Content-Length (RFC 9112 6.3)
            body = True
        elif name == b"expect":
            expect = value.lower() == b"100-continue"
    return body, expect


def _replay(first: dict, receive: Receive) -> Receive:
    pending = [first]

    async def read() -> dict:
        return pending.pop() if pending else await receive()

    return read


class ClientGuard:
    def __init__(self, app: Any, config: Any, http_app: Any = None) -> None:
        self.app = app
        # Plain HTTP requests may skip a dispatching layer `app` would only pass them through.
        self.http_app = http_app if http_app is not None else app
        self.max_in_flight = config.limits.max_in_flight_per_address
        self.read_timeout = config.server.read_timeout
        self.client_ip = ClientIp(config.server.trusted_proxies)
        self.headers = [(k.lower().encode(), v.encode()) for k, v in security_headers(config.server.tls_enabled)]
        self.in_flight: dict[str, int] = {}
        self.deadlines = BodyDeadlines()

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            try:
                return await self.app(scope, receive, send)
            finally:
                if scope["type"] == "lifespan":  # the worker stops: so does its deadline sweep
                    self.deadlines.close()
        started = time.perf_counter()
        version = _VERSIONS.get(scope.get("http_version", "1.1"))
        if version is None:
            return await self._refuse(scope, send, HttpVersionNotSupported(), started)
        if version != scope.get("http_version"):
            scope = {**scope, "http_version": version}
        headers = scope["headers"]
        if not isinstance(headers, (list, tuple)):  # a one-shot iterable (falcon.testing's), read twice here
            scope["headers"] = headers = [tuple(pair) for pair in headers]
        client = scope.get("client") or ("", 0)
        forwarded = None
        if self.client_ip.trusted:
            forwarded = ", ".join(v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for") or None
        address = self.client_ip.resolve(client[0], forwarded)
        scope[CLIENT_IP] = address
        count = self.in_flight.get(address, 0)
        if count >= self.max_in_flight:
            error = RateLimited("Too many requests in progress from your address",
                                headers={"Retry-After": "1", "Connection": "close"})
            return await self._refuse(scope, send, error, started)
        self.in_flight[address] = count + 1
        try:
            body, expect = _framing(headers)
            if expect:
                receive = deferred(receive)
            if version != "2" and not body:
                # HTTP/1 without Content-Length or Transfer-Encoding has no body (RFC 9112 6.3):
                # nothing to wait for, so no deadline to keep.
                return await self.http_app(scope, receive, send)
            reader = self.deadlines.reader(receive, asyncio.get_running_loop().time() + self.read_timeout)
            # Falcon awaits the first body event before anything else, outside its error
            # handling: take it here, so a late or broken first chunk still gets the envelope.
            try:
                first = await reader()
            except ApiError as error:
                return await self._refuse(scope, send, error, started)
            await self.http_app(scope, _replay(first, reader), send)
        finally:
            count = self.in_flight[address] - 1
            if count:
                self.in_flight[address] = count
            else:
                del self.in_flight[address]

    async def _refuse(self, scope: dict, send: Send, error: ApiError, started: float) -> None:
        """The envelope, written here: the request never reaches Falcon (nor its body read)."""
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        rid = request_id(incoming)
        body = orjson.dumps(error.body(rid))
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"x-request-id", rid.encode()), *self.headers,
                   *((k.lower().encode(), v.encode()) for k, v in error.headers.items())]
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        log_access(rid, scope.get("method"), scope.get("path"), error.status, time.perf_counter() - started,
                   client_ip=scope.get(CLIENT_IP), error_code=error.code)
