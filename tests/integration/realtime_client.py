"""A WebSocket client for the realtime tests: the `websockets` library, as a frontend would
use it, plus a reader that answers the server's pings (as the README asks of clients) and
keeps every other frame for the test to look at."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import websockets

from tests.support import DEMO_PASSWORD


def ws_url(http_url: str, path: str = "/ws") -> str:
    return http_url.replace("http://", "ws://") + path


async def sign_in(http_url: str, email: str) -> dict:
    async with httpx.AsyncClient(base_url=http_url, timeout=10) as client:
        answer = await client.post("/api/v1/auth/login", json={"email": email, "password": DEMO_PASSWORD})
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]


class Client:
    def __init__(self, ws: Any, answer_pings: bool = True) -> None:
        self.ws = ws
        self.answer_pings = answer_pings
        self.frames: list[dict] = []
        self.pings = 0
        self._arrived = asyncio.Event()
        self.reader = asyncio.get_running_loop().create_task(self._read())
        self.connected: dict | None = None

    @classmethod
    async def open(cls, http_url: str, token: str | None = None, *, query: str = "", answer_pings: bool = True,
                   first_auth: bool = False, since: str | None = None, **kwargs: Any) -> "Client":
        headers = {"Authorization": f"Bearer {token}"} if token and not first_auth and "token=" not in query else {}
        ws = await websockets.connect(ws_url(http_url) + query, additional_headers=headers, **kwargs)
        client = cls(ws, answer_pings)
        if first_auth:
            doc: dict[str, Any] = {"type": "auth", "token": token}
            if since:
                doc["since"] = since
            await client.send(doc)
        return client

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                doc = json.loads(raw)
                if doc.get("type") == "ping":
                    self.pings += 1
                    if self.answer_pings:
                        await self.ws.send('{"type": "pong"}')
                    continue
                if doc.get("type") == "connected":
                    self.connected = doc
                self.frames.append(doc)
                self._arrived.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self._arrived.set()

    async def send(self, doc: Any) -> None:
        await self.ws.send(doc if isinstance(doc, str) else json.dumps(doc))

    @property
    def pid(self) -> str:
        """Which worker process holds the socket (the connection id starts with its pid)."""
        assert self.connected is not None
        return self.connected["connection_id"].split("-")[0]

    async def wait_for(self, predicate, timeout: float = 10.0) -> dict:
        """The first frame (from the start) matching `predicate`; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for frame in self.frames:
                if predicate(frame):
                    return frame
            if self.reader.done():
                raise AssertionError(f"closed ({self.close_code}) before a matching frame; last: {self._tail()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching frame within {timeout}s; last: {self._tail()}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                pass

    def _tail(self) -> str:
        return f"{len(self.frames)} frames, last " + "; ".join(json.dumps(f)[:160] for f in self.frames[-4:])

    async def wait_connected(self) -> dict:
        return await self.wait_for(lambda f: f["type"] == "connected")

    def messages(self, channel: str | None = None) -> list[dict]:
        return [f for f in self.frames if f["type"] == "message" and (channel is None or f["channel"] == channel)]

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        await asyncio.wait_for(asyncio.shield(self.reader), timeout)
        return self.close_code

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.wait_for(asyncio.shield(self.reader), 10)
