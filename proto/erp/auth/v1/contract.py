"""The parts of the gateway <-> auth-service contract that a .proto cannot say.

Both sides import this module (the gateway's runtime and the auth emulator), so neither
imports the other: the trailer a refresh-token replay answers with, and the role catalogue
the auth service reports through ListRoles/ListPermissions, which is also the gateway's
shipped `rbac.roles` policy.
"""

from __future__ import annotations

from typing import Any

# Trailing metadata with which the auth service says a refresh-token replay killed a
# session: "<sid> <epoch seconds until which its access tokens could still be valid>".
REVOKED_SESSION_TRAILER = "x-revoked-session"

# The role catalogue: super_admin > admin > {hr,finance,sales}_manager > manager > employee
# > viewer. A role inherits every grant of its `parents` (the roles directly below it).
ROLES: dict[str, dict[str, Any]] = {
    "viewer": {"parents": [], "permissions": ["crm.*:read", "hrm.departments:read"],
               "description": "Reads customer data and the organization chart"},
    "employee": {"parents": ["viewer"],
                 "permissions": ["hrm.employees:read", "crm.contacts:create", "crm.contacts:update"],
                 "description": "Day-to-day work on contacts; sees colleagues"},
    "manager": {"parents": ["employee"],
                "permissions": ["crm.*:create", "crm.*:update", "hrm.*:read", "finance.*:read",
                                "realtime.events:subscribe"],
                "description": "Runs a team: edits CRM records, reads HR and finance"},
    "hr_manager": {"parents": ["manager"], "permissions": ["hrm.*:*"], "description": "Everything in HRM"},
    "finance_manager": {"parents": ["manager"], "permissions": ["finance.*:*"],
                        "description": "Everything in finance"},
    "sales_manager": {"parents": ["manager"], "permissions": ["crm.*:*"], "description": "Everything in CRM"},
    "admin": {"parents": ["hr_manager", "finance_manager", "sales_manager"],
              "permissions": ["auth.*:*", "realtime.notifications:send"],
              "description": "Administers one organization"},
    "super_admin": {"parents": ["admin"], "permissions": ["*.*:*"], "description": "Operates the platform"},
}

# The permissions ListPermissions reports: every action on every resource of every service.
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
