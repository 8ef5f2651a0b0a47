"""The per-request Context a handler receives with the Falcon request."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from runtime.backends.client import BoundBackends

if TYPE_CHECKING:
    from runtime.auth.principal import Principal
    from runtime.endpoint import Route
    from runtime.resources import Resources


class Context:
    __slots__ = ("resources", "route", "request_id", "client_ip", "deadline", "principal", "body", "query", "_backends")

    def __init__(self, resources: "Resources", route: "Route", request_id: str, client_ip: str) -> None:
        self.resources = resources
        self.route = route
        self.request_id = request_id
        self.client_ip = client_ip
        # The request's own budget; every backend call gets at most what is left of it.
        self.deadline = time.monotonic() + resources.config.server.request_timeout
        self.principal: Principal | None = None
        self.body: dict[str, Any] | None = None
        self.query: dict[str, Any] | None = None  # validated query parameters (route `query=`)
        self._backends: BoundBackends | None = None

    def detached(self) -> "Context":
        """A copy with a budget of its own, for work other requests share (a single-flight cache
        load): the caller's deadline, cancellation and backend bindings stay the caller's."""
        copy = Context(self.resources, self.route, self.request_id, self.client_ip)
        copy.principal, copy.body, copy.query = self.principal, self.body, self.query
        return copy

    @property
    def config(self):
        return self.resources.config

    @property
    def backends(self) -> BoundBackends:
        if self._backends is None:
            self._backends = BoundBackends(self.resources.backends, self)
        return self._backends

    async def publish(self, channel: str, data: Any):
        """Publish a realtime message as the caller (runtime.realtime): `sender` is the
        signed-in user, and role:/events: channels are the caller's organization's."""
        principal = self.principal
        return await self.resources.realtime.publish(
            channel, data,
            sender=principal.user_id if principal else None,
            organization=principal.organization_id if principal else None,
        )

    def grpc_metadata(self) -> tuple[tuple[str, str], ...]:
        """What every backend call carries: request id and, when signed in, the caller."""
        metadata = [("x-request-id", self.request_id)]
        if self.principal is not None:
            metadata += [
                ("x-user-id", self.principal.user_id),
                ("x-organization-id", self.principal.organization_id),
                ("x-roles", ",".join(self.principal.roles)),
            ]
        return tuple(metadata)
