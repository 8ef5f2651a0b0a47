"""What every emulated servicer shares: typed errors and the caller's tenancy metadata.

Servicers raise ``ServiceError``; the per-service interceptor (server.py) turns it into a
gRPC status, so business code never touches the aio context to fail a call.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


class ServiceError(Exception):
    """A failed call: the gRPC status code and a details string.

    Field errors read ``"<field>: <problem>"`` so the gateway can key them by field.
    """

    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailers = trailers  # trailing metadata, e.g. which session a replay revoked


def invalid(field: str, problem: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {problem}")


def not_found(kind: str, id: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.NOT_FOUND, f"{kind} {id!r} not found")


@dataclass(frozen=True)
class Caller:
    """Who the gateway says is calling, from request metadata; empty when not sent."""

    organization_id: str = ""
    user_id: str = ""
    roles: tuple[str, ...] = ()
    request_id: str = ""

    @classmethod
    def of(cls, context: grpc.aio.ServicerContext) -> Caller:
        md = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        roles = tuple(r.strip() for r in md.get("x-roles", "").split(",") if r.strip())
        return cls(md.get("x-organization-id", ""), md.get("x-user-id", ""), roles,
                   md.get("x-request-id", ""))


def require_org(context: grpc.aio.ServicerContext) -> str:
    """The organization every crm/hrm/finance call is scoped to; it must come from metadata."""
    org = Caller.of(context).organization_id
    if not org:
        raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT,
                           "x-organization-id: metadata is required")
    return org
