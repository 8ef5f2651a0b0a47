"""Background health checks: `/ready` reports recent real results instead of probing per request.

One task per worker checks every dependency concurrently each `interval` (backends with
`grpc.health.v1` over their long-lived channel, Valkey with PING) and keeps the last result
of each. A request to /ready costs nothing, and a flood of /ready calls never reaches a
backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

log = logging.getLogger("gateway.health")

Check = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class Health:
    up: bool
    latency_ms: float
    checked_at: float  # time.monotonic()
    error: str | None = None


def grpc_health_check(channel: grpc.aio.Channel, service: str = "") -> Check:
    stub = health_pb2_grpc.HealthStub(channel)

    async def check() -> bool:
        answer = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        return answer.status == health_pb2.HealthCheckResponse.SERVING

    return check


class HealthMonitor:
    def __init__(self, checks: dict[str, Check], interval: float, timeout: float = 1.0) -> None:
        self.checks = checks
        self.interval = interval
        self.timeout = min(timeout, interval)
        self.results: dict[str, Health] = {}
        self.after_round: Callable[[dict[str, Health]], None] | None = None  # e.g. export to metrics
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.check_all()  # /ready has real answers from the first request on
        self._task = asyncio.create_task(self._run(), name="health-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def is_stale(self, result: Health) -> bool:
        """A result older than a few intervals means the checker itself is stuck."""
        return time.monotonic() - result.checked_at > 3 * self.interval + self.timeout

    async def check_all(self) -> None:
        results = await asyncio.gather(*(self._check(c) for c in self.checks.values()))
        self.results = dict(zip(self.checks, results))
        if self.after_round is not None:
            self.after_round(self.results)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_all()
            except Exception:  # never let one bad round end the monitor
                log.exception("health check round failed")

    async def _check(self, check: Check) -> Health:
        started = time.monotonic()
        try:
            up = await asyncio.wait_for(check(), self.timeout)
            error = None if up else "not serving"
        except Exception as exc:  # any failure of a check means "down", with the reason
            up, error = False, _reason(exc)
        now = time.monotonic()
        return Health(up, round((now - started) * 1000, 2), now, error)


def _reason(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code().name
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    return type(exc).__name__
