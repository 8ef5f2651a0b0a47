"""Calling a backend: deadline, metadata, retries, circuit breaker and status mapping.

`ctx.backends.crm.GetCustomer(request)` calls through a `BoundService`, which knows the
request it serves: its deadline bounds the call (every attempt and every backoff), and its
request id, caller and trace context travel as metadata. `ServiceClient.call` retries
idempotent calls within the backend's retry budget (runtime.backends.retry); each attempt
passes the backend's circuit breaker (runtime.backends.breaker).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

import grpc
from opentelemetry import propagate, trace

from runtime.backends.breaker import CircuitBreaker, CircuitOpen
from runtime.backends.channels import open_channel
from runtime.backends.retry import RETRYABLE_CODES, RetryBudget, backoff, is_idempotent
from runtime.backends.status import BREAKER_CODES, to_api_error
from runtime.errors import BackendTimeout, BackendUnavailable

if TYPE_CHECKING:
    from runtime.context import Context


@dataclass(frozen=True)
class CallPolicy:
    """How every backend is called; from the `grpc` config section."""

    timeout: float = 30.0
    max_retries: int = 3
    backoff_base: float = 0.05
    backoff_max: float = 1.0
    budget_ratio: float = 0.2
    budget_floor: int = 10
    failure_threshold: int = 5
    cooldown: float = 5.0
    half_open_probes: int = 1

    @classmethod
    def from_config(cls, grpc_config: Any) -> "CallPolicy":
        r, b = grpc_config.retry, grpc_config.breaker
        return cls(grpc_config.timeout, grpc_config.max_retry, r.backoff_base, r.backoff_max,
                   r.budget_ratio, r.budget_floor, b.failure_threshold, b.cooldown, b.half_open_probes)


class ServiceClient:
    """One backend service: its channel and stub, its breaker and retry budget."""

    def __init__(self, name: str, target: str, policy: CallPolicy, stub: Callable[[Any], Any], tls: Any = None) -> None:
        self.name = name
        self.target = target
        self.policy = policy
        self.timeout = policy.timeout
        self.channel = open_channel(target, tls)
        self.tls = "none" if tls is None else "mutual" if tls.cert_file else "server"
        self.stub = stub(self.channel)
        self.breaker = CircuitBreaker(policy.failure_threshold, policy.cooldown, policy.half_open_probes)
        self.budget = RetryBudget(policy.budget_ratio, policy.budget_floor)
        self.in_flight = 0  # calls in progress, retries and backoffs included

    async def call(self, method: str, request: Any, *, deadline: float, metadata: tuple) -> Any:
        rpc: Callable = getattr(self.stub, method)
        retryable = is_idempotent(method)
        self.budget.deposit()
        self.in_flight += 1
        try:
            attempt = 0
            while True:
                try:
                    return await self._attempt(rpc, request, deadline, metadata)
                except grpc.aio.AioRpcError as exc:
                    attempt += 1
                    delay = self._retry_delay(retryable, exc.code(), attempt, deadline)
                    if delay is None:
                        error = to_api_error(exc.code(), exc.details())
                        error.backend_trailers = dict(exc.trailing_metadata() or ())
                        raise error from None
                    await asyncio.sleep(delay)
        finally:
            self.in_flight -= 1

    def _retry_delay(self, retryable: bool, code: grpc.StatusCode, attempt: int, deadline: float) -> float | None:
        """The backoff before retry number `attempt`, or None when it must not be retried."""
        p = self.policy
        if not retryable or code not in RETRYABLE_CODES or attempt > p.max_retries:
            return None
        delay = backoff(attempt, p.backoff_base, p.backoff_max)
        if time.monotonic() + delay >= deadline:  # no time left for another attempt
            return None
        return delay if self.budget.withdraw() else None

    async def _attempt(self, rpc: Callable, request: Any, deadline: float, metadata: tuple) -> Any:
        remaining = min(self.timeout, deadline - time.monotonic())
        if remaining <= 0:
            raise BackendTimeout()
        try:
            probe = self.breaker.admit()
        except CircuitOpen as exc:
            raise BackendUnavailable(headers={"Retry-After": exc.retry_after_header}) from None
        try:
            result = await rpc(request, timeout=remaining, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in BREAKER_CODES:
                self.breaker.failure(probe)
            else:
                self.breaker.success(probe)  # the backend answered: it is up
            raise
        except grpc.aio.UsageError:  # our channel is closed: the worker is shutting down
            self.breaker.release(probe)
            raise BackendUnavailable() from None
        except BaseException:  # cancelled by our client: no verdict on the backend
            self.breaker.release(probe)
            raise
        self.breaker.success(probe)
        return result

    def stats(self) -> dict[str, Any]:
        """Breaker state and counters, retry budget and in-flight calls, for /ready and metrics."""
        return {
            "breaker": self.breaker.snapshot(),
            "retries": {"spent": self.budget.spent, "denied": self.budget.denied,
                        "balance": round(self.budget.balance, 2)},
            "in_flight": self.in_flight,
        }

    async def close(self) -> None:
        await self.channel.close()


class Backends:
    """Every backend client of one worker."""

    def __init__(self, services: dict[str, str], stubs: Mapping[str, Callable[[Any], Any]],
                 policy: CallPolicy | None = None, tls: Mapping[str, Any] | None = None) -> None:
        """`services`: name -> address; `stubs`: name -> the generated stub class; `tls`:
        name -> its `grpc.tls` entry (absent: plaintext)."""
        policy, tls = policy or CallPolicy(), tls or {}
        self.clients = {name: ServiceClient(name, target, policy, stubs[name], tls.get(name))
                        for name, target in services.items()}

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


def trace_metadata() -> tuple[tuple[str, str], ...]:
    """W3C trace context of the current OpenTelemetry span, if there is one."""
    if not trace.get_current_span().get_span_context().is_valid:
        return ()
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple(carrier.items())


class BoundService:
    def __init__(self, client: ServiceClient, ctx: "Context") -> None:
        self._client = client
        self._ctx = ctx

    def __getattr__(self, method: str) -> Callable[[Any], Any]:
        async def call(request: Any) -> Any:
            metadata = self._ctx.grpc_metadata() + trace_metadata()
            return await self._client.call(method, request, deadline=self._ctx.deadline, metadata=metadata)

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
