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
    # wrk connections for this target when not the bench's --connections: a target that takes
    # milliseconds of CPU per request saturates a worker with a few, and times out with 50.
    connections: int | None = None


BASELINE = Target("hello", "hello", "/", note="bare Falcon on the same Granian flags")

CUSTOMERS = "/api/v1/crm/customers"


def first_customer(client: "Client") -> str:
    return f"{CUSTOMERS}/{client.get(CUSTOMERS)['data']['items'][0]['id']}"


GRAPHQL_ME = '{"query": "{ me { id email roles { name } } }"}'
GRAPHQL_EMPLOYEES = ('{"query": "{ employees(first: 50) { totalCount nodes { id firstName lastName '
                     'department { name } manager { firstName lastName } } } }"}')
EMPLOYEES = "/api/v1/hrm/employees"


def fifty_employees(client: "Client") -> str:
    """/graphql, once the demo organization has at least 50 employees (the seed has fewer):
    the rest are created through REST, in its departments, managed by its first employee."""
    import orjson

    listed = client.get(EMPLOYEES + "?page_size=100")["data"]["items"]
    departments = client.get("/api/v1/hrm/departments")["data"]["items"]
    for i in range(len(listed), 50):
        body = {"first_name": f"Bench{i}", "last_name": "Employee", "manager_id": listed[0]["id"],
                "department_id": departments[i % len(departments)]["id"]}
        status, raw = client.request("POST", EMPLOYEES, orjson.dumps(body), token=client.token())
        if status != 201:
            raise RuntimeError(f"creating bench employees: HTTP {status} {raw[:300]!r}")
    return "/graphql"


TARGETS: list[Target] = [
    Target("health", "gateway", "/health", note="full middleware pipeline, no backend call"),
    Target("me", "gateway", "/api/v1/auth/me", auth=True,
           note="JWT check + auth.GetUser, cached per user (user_profile)"),
    Target("customer", "gateway", first_customer, auth=True,
           note="JWT check + RBAC + crm.GetCustomer, a Valkey cache hit after the first"),
    Target("gql_me", "gateway", "/graphql", auth=True, method="POST", body=GRAPHQL_ME,
           note="GraphQL { me { id email roles { name } } }: the same cache entry as REST /me"),
    Target("gql_employees", "gateway", fifty_employees, auth=True, method="POST", body=GRAPHQL_EMPLOYEES,
           note="GraphQL: 50 employees with department and manager (list cached, 2 Batch* calls)", connections=4),
    Target("fastapi-me", "fastapi", "/api/v1/auth/me", auth=True, mirrors="me",
           note="the same read as FastAPI on uvicorn: PyJWT per request, valkey-py cache"),
    Target("fastapi-customer", "fastapi", first_customer, auth=True, mirrors="customer",
           note="the same read as FastAPI on uvicorn"),
]
