"""`Expect: 100-continue`: send `100 Continue` only when the handler reads the body.

Granian answers 100 Continue as soon as the application first calls `receive()`, and
Falcon calls it before routing, to preload the first body chunk. So a client that asked
for permission before uploading was always told to go ahead, even when the gateway was
about to refuse the body (413 from its Content-Length, 401, 403, 429, ...); it then sent the
body into a connection the server closed after answering, and met a broken pipe instead
of the 413. This wrapper hands Falcon an empty first chunk that promises more, so
Granian's `receive()`, and with it the 100, happens only when the body is really read:
a request refused before that gets its final answer and never sends the body.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

Receive = Callable[[], Awaitable[dict[str, Any]]]
_DEFERRED_FIRST = {"type": "http.request", "body": b"", "more_body": True}


def deferred(receive: Receive) -> Receive:
    """`receive` for a request that sent `Expect: 100-continue` (runtime.security.client_guard
    applies it, in the same pass over the headers that looks for a body)."""
    first = True

    async def read() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return dict(_DEFERRED_FIRST)
        return await receive()

    return read
