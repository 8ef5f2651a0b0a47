"""What the bench measures: one row per target. Adding a benchmark means adding one row.

`path` is a string, or a function of the signed-in `Client` for paths that need real data
(an id the seed data chose), resolved once before the first run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from loadtests.bench.servers import Client


@dataclass(frozen=True)
class Target:
    name: str
    server: str  # "hello" (the baseline app) or "gateway"
    path: str | Callable[["Client"], str]
    auth: bool = False  # send the demo user's Bearer token
    method: str = "GET"
    body: str | None = None  # JSON request body, sent with Content-Type: application/json
    note: str = ""
    mirrors: str | None = None  # the gateway target this one re-implements (the report compares them)


BASELINE = Target("hello", "hello", "/", note="bare Falcon on the same Granian flags")

CUSTOMERS = "/api/v1/crm/customers"


def first_customer(client: "Client") -> str:
    return f"{CUSTOMERS}/{client.get(CUSTOMERS)['data']['items'][0]['id']}"


TARGETS: list[Target] = [
    Target("health", "gateway", "/health", note="full middleware pipeline, no backend call"),
    Target("me", "gateway", "/api/v1/auth/me", auth=True,
           note="JWT check + auth.GetUser, cached per user (user_profile)"),
    Target("customer", "gateway", first_customer, auth=True,
           note="JWT check + RBAC + crm.GetCustomer, a Valkey cache hit after the first"),
    Target("fastapi-me", "fastapi", "/api/v1/auth/me", auth=True, mirrors="me",
           note="the same read as FastAPI on uvicorn: PyJWT per request, valkey-py cache"),
    Target("fastapi-customer", "fastapi", first_customer, auth=True, mirrors="customer",
           note="the same read as FastAPI on uvicorn"),
]
