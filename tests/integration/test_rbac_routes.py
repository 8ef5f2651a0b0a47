"""Every route in the registry against every default role, through the real gateway.

The expectation below is written out by hand from the documented hierarchy (README,
"Access control"), not computed by the policy engine, so a wrong closure or a wrong
wildcard match in runtime/rbac.py shows up here as a mismatch.
"""

from __future__ import annotations

import re

import pytest

from runtime.endpoint import discover
from tests.conftest import login

ROLES = ("viewer", "employee", "manager", "hr_manager", "finance_manager", "sales_manager", "admin", "super_admin")
MANAGERS = {"manager", "hr_manager", "finance_manager", "sales_manager", "admin", "super_admin"}
EMPLOYEES = MANAGERS | {"employee"}


def expected_allowed(role: str, permission: str) -> bool:
    domain, _resource, action = re.match(r"(\w+)\.(\w+):(\w+)", permission).groups()
    if role in ("super_admin", "admin"):
        return True  # admin inherits all three specialist managers plus auth.*
    if domain == "crm" and role == "sales_manager":
        return True
    if domain == "hrm" and role == "hr_manager":
        return True
    if domain == "finance" and role == "finance_manager":
        return True
    if role in MANAGERS and (
        (domain == "crm" and action in ("read", "create", "update")) or (domain in ("hrm", "finance") and action == "read")
    ):
        return True
    if role in EMPLOYEES and (permission == "hrm.employees:read" or permission in ("crm.contacts:create", "crm.contacts:update")):
        return True
    return (domain == "crm" and action == "read") or permission == "hrm.departments:read"  # everyone: viewer's grants


# Logout last: it revokes the token the other requests use.
ROUTES = sorted((r for r in discover() if r.auth == "required"), key=lambda r: r.path.endswith("/logout"))


@pytest.fixture(scope="module")
def tokens(gateway):
    with gateway.client() as c:
        return {role: login(c, f"{role.replace('_', '-')}@acme.example")["access_token"] for role in ROLES}


def test_every_route_against_every_role(gateway, tokens):
    mismatches = []
    with gateway.client() as c:
        for route in ROUTES:
            path = re.sub(r"\{\w+\}", "no-such-id", route.path)
            for role in ROLES:
                answer = c.request(
                    route.method, path, headers={"Authorization": f"Bearer {tokens[role]}"},
                    json={} if route.method in ("POST", "PATCH", "PUT") else None,
                )
                assert answer.status_code not in (401, 429, 500), (route.path, role, answer.text)
                allowed = route.permission is None or expected_allowed(role, route.permission)
                if (answer.status_code == 403) == allowed:
                    mismatches.append(f"{role} {route.method} {route.path} ({route.permission}): {answer.status_code}")
                if answer.status_code == 403:
                    doc = answer.json()
                    assert doc["code"] == "FORBIDDEN" and route.permission in doc["message"]
    assert not mismatches, "\n".join(mismatches)


def test_the_matrix_covers_the_domains():
    permissions = {r.permission for r in ROUTES if r.permission}
    assert {p.split(".")[0] for p in permissions} >= {"crm", "hrm", "finance"}
    # Both answers occur for every role below admin: the test exercises allow and deny.
    for role in ROLES[:6]:
        decisions = {expected_allowed(role, p) for p in permissions}
        assert decisions == {True, False}, role
