"""The auth service's JWKS over plain HTTP/1.1, on its own port, with no web framework.

It also counts JWKS fetches and reports them at ``/_emulator/stats``, with every service's
calls per method, so tests and the bench can check over HTTP what the gateway calls (that it
caches keys instead of fetching them per request; how many calls its response cache saves).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import orjson

JWKS_PATH = "/.well-known/jwks.json"
STATS_PATH = "/_emulator/stats"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class JwksServer:
    def __init__(self, jwks: Callable[[], dict], calls: Callable[[], dict] | None = None) -> None:
        self._jwks = jwks
        self._calls = calls  # () -> {service: {method: calls}}, shown at STATS_PATH
        self.jwks_fetches = 0
        self.host, self.port = "", 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{JWKS_PATH}"

    async def start(self, host: str, port: int) -> str:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.host, self.port = host, self._server.sockets[0].getsockname()[1]
        return self.url

    @property
    def running(self) -> bool:
        return self._server is not None

    async def resume(self) -> str:
        """Listen again on the port ``stop`` released: the JWKS host coming back."""
        return await self.start(self.host, self.port)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._connections):  # idle keep-alive clients would block wait_closed
            writer.close()
        await self._server.wait_closed()
        self._server = None

    def _route(self, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        path = path.split("?", 1)[0]
        if path not in (JWKS_PATH, STATS_PATH):
            return 404, {}, orjson.dumps({"error": "not found"})
        if method != "GET":
            return 405, {"Allow": "GET"}, orjson.dumps({"error": "method not allowed"})
        if path == STATS_PATH:
            stats = {"jwks_fetches": self.jwks_fetches, "calls": self._calls() if self._calls else {}}
            return 200, {"Cache-Control": "no-store"}, orjson.dumps(stats)
        self.jwks_fetches += 1
        return 200, {"Cache-Control": "max-age=300"}, orjson.dumps(self._jwks())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:  # keep-alive: one request after another on the connection
                try:
                    request_line, headers = await _read_request(reader)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                        ValueError):
                    return
                parts = request_line.split(" ")
                status, extra, body = self._route(parts[0], parts[1]) if len(parts) == 3 else (
                    400, {}, b"")
                close = headers.get("connection", "").lower() == "close" or status == 400
                lines = [f"HTTP/1.1 {status} {_REASONS[status]}",
                         "Content-Type: application/json", f"Content-Length: {len(body)}",
                         *(f"{k}: {v}" for k, v in extra.items()),
                         f"Connection: {'close' if close else 'keep-alive'}"]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
                await writer.drain()
                if close:
                    return
        finally:
            self._connections.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    """The request line and headers; a body (not expected) is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in header_lines if line)}
    await reader.readexactly(int(headers.get("content-length") or 0))
    return request_line, headers
