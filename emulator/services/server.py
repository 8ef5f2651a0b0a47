"""One grpc.aio server per emulated service, so each can be stopped and restarted on its port.

The servicer objects (and so the data) outlive the server: ``stop()`` then ``start()`` on the
same port brings the same service back. The interceptor is the single place that sees every
call of the service; it maps ``ServiceError`` to a status, counts calls (so tests can see
batching and retries), tracks calls in flight, and injects the service's current ``Fault``
(emulator.services.faults). ``kill()`` and ``restart()`` take the service off and back on.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections import Counter
from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from emulator.services.faults import NO_FAULT, Fault
from emulator.services.rpc import ServiceError

HEALTH_PREFIX = "/grpc.health.v1.Health/"


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()  # full method name -> calls
        self.fault: Fault = NO_FAULT  # replace at any time; read on every call
        self.in_flight = 0  # service calls (not health checks) being served now
        self.random = random.Random()

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler  # health Watch (streaming) passes through untouched
        inner, method = handler.unary_unary, details.method
        faulty = not method.startswith(HEALTH_PREFIX)  # health stays honest about the process

        async def unary(request, context):
            self.calls[method] += 1
            if not faulty:
                return await self._serve(inner, request, context)
            self.in_flight += 1
            try:  # a cancelled call (the client's deadline passed) ends here too
                fault = self.fault
                if fault.latency:
                    await asyncio.sleep(fault.latency)
                if fault.error_rate and self.random.random() < fault.error_rate:
                    await context.abort(fault.error_code, "injected fault")
                return await self._serve(inner, request, context)
            finally:
                self.in_flight -= 1

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    @staticmethod
    async def _serve(inner, request, context):
        try:
            result = inner(request, context)
            return await result if inspect.isawaitable(result) else result
        except ServiceError as e:
            await context.abort(e.code, e.details, trailing_metadata=e.trailers)


class ServiceServer:
    """A named service: ``register(server)`` adds its servicer(s) to each fresh grpc.aio server."""

    def __init__(self, name: str, full_name: str, register: Callable[[grpc.aio.Server], None]):
        self.name = name
        self.full_name = full_name  # e.g. "erp.crm.v1.CrmService", for health checks
        self.register = register
        self.interceptor = ServiceInterceptor()
        self.host = ""
        self.port = 0  # the bound port, reused by a later restart
        self.credentials: grpc.ServerCredentials | None = None  # TLS when set (kept for restarts)
        self._server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self, host: str, port: int, credentials: grpc.ServerCredentials | None = None) -> str:
        """Listen on host:port; with `credentials` (grpc.ssl_server_credentials) over TLS."""
        credentials = credentials or self.credentials
        # No SO_REUSEPORT: a second emulator on the same port must fail, not split the traffic.
        server = grpc.aio.server(interceptors=[self.interceptor], options=[("grpc.so_reuseport", 0)])
        self.register(server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        try:
            if credentials is None:
                bound = server.add_insecure_port(f"{host}:{port}")
            else:
                bound = server.add_secure_port(f"{host}:{port}", credentials)
        except RuntimeError as e:  # grpc's message does not say which service
            raise OSError(f"{self.name}: cannot listen on {host}:{port} (in use?)") from e
        await server.start()
        for svc in (self.full_name, ""):
            await self._health.set(svc, health_pb2.HealthCheckResponse.SERVING)
        self._server, self.host, self.port, self.credentials = server, host, bound, credentials
        return self.address

    async def stop(self, grace: float = 1.0) -> None:
        if self._server is None or self._health is None:
            return
        await self._health.enter_graceful_shutdown()  # NOT_SERVING while draining
        await self._server.stop(grace)
        self._server = self._health = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def kill(self) -> None:
        """Stop at once: calls in flight are cancelled, the port refuses connections."""
        await self.stop(0)

    async def restart(self) -> str:
        """Back on the same port, with the same data (and the same fault, if any)."""
        return await self.start(self.host, self.port)
