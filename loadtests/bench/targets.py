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


BASELINE = Target("hello", "hello", "/", note="bare Falcon on the same Granian flags")

TARGETS: list[Target] = [
    Target("health", "gateway", "/health", note="full middleware pipeline, no backend call"),
    Target("me", "gateway", "/api/v1/auth/me", auth=True, note="JWT check + auth.GetUser over gRPC"),
    # A cached read would be one more row, e.g.:
    # Target("customer", "gateway",
    #        lambda c: f"/api/v1/crm/customers/{c.get('/api/v1/crm/customers')['data'][0]['id']}",
    #        auth=True, note="cache hit in Valkey"),
]
