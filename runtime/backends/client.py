"""Calling a backend: deadline, metadata and status mapping on every call.

`ctx.backends.crm.GetCustomer(request)` calls through a `BoundService`, which knows the
request it serves: its deadline bounds the call, and its request id and caller travel as
metadata. Retries and the circuit breaker wrap `ServiceClient.call` (issue: backends).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

import grpc

from runtime.backends.channels import STUBS, open_channel
from runtime.backends.status import to_api_error
from runtime.errors import BackendTimeout, BackendUnavailable

if TYPE_CHECKING:
    from runtime.context import Context


class ServiceClient:
    """One backend service: its channel, its stub, its configured timeout."""

    def __init__(self, name: str, target: str, timeout: float) -> None:
        self.name = name
        self.target = target
        self.timeout = timeout
        self.channel = open_channel(target)
        self.stub = STUBS[name](self.channel)

    async def call(self, method: str, request: Any, *, deadline: float, metadata: tuple) -> Any:
        remaining = min(self.timeout, deadline - time.monotonic())
        if remaining <= 0:
            raise BackendTimeout()
        rpc: Callable = getattr(self.stub, method)
        try:
            return await rpc(request, timeout=remaining, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise to_api_error(exc.code(), exc.details()) from None
        except grpc.aio.UsageError:
            raise BackendUnavailable() from None

    async def close(self) -> None:
        await self.channel.close()


class Backends:
    """Every backend client of one worker."""

    def __init__(self, services: dict[str, str], timeout: float) -> None:
        self.clients = {name: ServiceClient(name, target, timeout) for name, target in services.items()}

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


class BoundService:
    def __init__(self, client: ServiceClient, ctx: "Context") -> None:
        self._client = client
        self._ctx = ctx

    def __getattr__(self, method: str) -> Callable[[Any], Any]:
        async def call(request: Any) -> Any:
            return await self._client.call(
                method, request, deadline=self._ctx.deadline, metadata=self._ctx.grpc_metadata()
            )

        return call


class BoundBackends:
    def __init__(self, backends: Backends, ctx: "Context") -> None:
        self._backends = backends
        self._ctx = ctx

    def __getattr__(self, name: str) -> BoundService:
        try:
            client = self._backends.clients[name]
        except KeyError:
            raise AttributeError(f"no backend named {name!r}") from None
        return BoundService(client, self._ctx)
