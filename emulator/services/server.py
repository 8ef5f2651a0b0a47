"""One grpc.aio server per emulated service, so each can be stopped and restarted on its port.

The servicer objects (and so the data) outlive the server: ``stop()`` then ``start()`` on the
same port brings the same service back. The interceptor is the single place that sees every
call of the service; it maps ``ServiceError`` to a status, counts calls (so tests can see
batching), and is where fault injection will go.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from emulator.services.rpc import ServiceError


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()  # full method name -> calls

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler  # health Watch (streaming) passes through untouched
        inner, method = handler.unary_unary, details.method

        async def unary(request, context):
            self.calls[method] += 1
            try:
                result = inner(request, context)
                return await result if inspect.isawaitable(result) else result
            except ServiceError as e:
                await context.abort(e.code, e.details)

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class ServiceServer:
    """A named service: ``register(server)`` adds its servicer(s) to each fresh grpc.aio server."""

    def __init__(self, name: str, full_name: str, register: Callable[[grpc.aio.Server], None]):
        self.name = name
        self.full_name = full_name  # e.g. "erp.crm.v1.CrmService", for health checks
        self.register = register
        self.interceptor = ServiceInterceptor()
        self.host = ""
        self.port = 0  # the bound port, reused by a later restart
        self._server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self, host: str, port: int) -> str:
        # No SO_REUSEPORT: a second emulator on the same port must fail, not split the traffic.
        server = grpc.aio.server(interceptors=[self.interceptor], options=[("grpc.so_reuseport", 0)])
        self.register(server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        try:
            bound = server.add_insecure_port(f"{host}:{port}")
        except RuntimeError as e:  # grpc's message does not say which service
            raise OSError(f"{self.name}: cannot listen on {host}:{port} (in use?)") from e
        await server.start()
        for svc in (self.full_name, ""):
            await self._health.set(svc, health_pb2.HealthCheckResponse.SERVING)
        self._server, self.host, self.port = server, host, bound
        return self.address

    async def stop(self, grace: float = 1.0) -> None:
        if self._server is None:
            return
        await self._health.enter_graceful_shutdown()  # NOT_SERVING while draining
        await self._server.stop(grace)
        self._server = self._health = None
