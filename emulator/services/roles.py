"""The roles and permissions the auth emulator reports: the gateway's shipped policy.

One source of truth (runtime.rbac.DEFAULT_ROLES), so ListRoles never disagrees with what
the gateway enforces. A role inherits every grant of its `parents` (the roles below it).
"""

from __future__ import annotations

from runtime.rbac import DEFAULT_ROLES

ACTIONS = ("read", "create", "update", "delete")
RESOURCES = {
    "auth": ("users", "organizations", "roles"),
    "crm": ("customers", "contacts", "deals"),
    "hrm": ("employees", "departments"),
    "finance": ("accounts", "invoices", "payments"),
}

PERMISSIONS: tuple[tuple[str, str], ...] = tuple(
    (f"{domain}.{resource}:{action}", f"{action.capitalize()} {domain} {resource}")
    for domain, resources in RESOURCES.items()
    for resource in resources
    for action in ACTIONS
)

# (name, description, parents, permissions), lowest first as declared.
ROLES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = tuple(
    (name, role["description"], tuple(role["parents"]), tuple(role["permissions"]))
    for name, role in DEFAULT_ROLES.items()
)

ROLE_NAMES = tuple(DEFAULT_ROLES)
