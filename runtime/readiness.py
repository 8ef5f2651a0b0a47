"""Readiness: ask every dependency, concurrently, with a short timeout each.

Required dependencies (the auth backend: nobody can sign in without it) make the gateway
unavailable (503) while they are down; the others make it degraded but still serving.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from grpc_health.v1 import health_pb2, health_pb2_grpc

if TYPE_CHECKING:
    from runtime.resources import Resources

CHECK_TIMEOUT = 1.0
REQUIRED = frozenset({"auth"})


async def _probe(check: Callable[[], Awaitable[bool]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        up = await asyncio.wait_for(check(), CHECK_TIMEOUT)
        error = None if up else "not serving"
    except Exception as exc:  # any failure of a probe means "down", with the reason
        up, error = False, type(exc).__name__
    result: dict[str, Any] = {
        "status": "up" if up else "down",
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if error:
        result["error"] = error
    return result


def _grpc_check(channel) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        return answer.status == health_pb2.HealthCheckResponse.SERVING

    return check


async def check_dependencies(resources: "Resources") -> dict[str, Any]:
    checks: dict[str, Callable[[], Awaitable[bool]]] = {
        name: _grpc_check(client.channel) for name, client in resources.backends.clients.items()
    }
    checks["valkey"] = resources.valkey.ping
    results = await asyncio.gather(*(_probe(c) for c in checks.values()))
    dependencies = {}
    for name, result in zip(checks, results):
        result["required"] = name in REQUIRED
        dependencies[name] = result
    down = {n for n, r in dependencies.items() if r["status"] == "down"}
    status = "unavailable" if down & REQUIRED else "degraded" if down else "ready"
    return {"status": status, "dependencies": dependencies}
