"""The default role hierarchy and permission catalogue the auth service reports.

A role inherits every permission of its ``parents`` (the roles directly below it), never the
reverse. Permissions are ``domain.resource:action``; ``*`` matches any one segment.
"""

from __future__ import annotations

ACTIONS = ("read", "write", "delete")
RESOURCES = {
    "auth": ("users", "organizations", "roles"),
    "crm": ("customers", "contacts", "deals"),
    "hrm": ("employees", "departments"),
    "finance": ("accounts", "invoices", "payments"),
}

PERMISSIONS: tuple[tuple[str, str], ...] = (
    *((f"{domain}.{resource}:{action}", f"{action.capitalize()} {domain} {resource}")
      for domain, resources in RESOURCES.items() for resource in resources for action in ACTIONS),
    ("auth.keys:rotate", "Rotate the token signing key"),
)

# (name, description, parents, permissions), lowest first.
ROLES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("viewer", "Read-only access to customer data", (),
     ("crm.*:read", "hrm.departments:read", "auth.organizations:read")),
    ("employee", "Day-to-day work on contacts; sees colleagues", ("viewer",),
     ("crm.contacts:write", "hrm.employees:read", "auth.users:read")),
    ("manager", "Manages CRM records; reads HR and finance", ("employee",),
     ("crm.*:write", "hrm.*:read", "finance.*:read")),
    ("hr_manager", "Everything in HRM", ("manager",), ("hrm.*:*",)),
    ("finance_manager", "Everything in finance", ("manager",), ("finance.*:*",)),
    ("sales_manager", "Everything in CRM", ("manager",), ("crm.*:*",)),
    ("admin", "Administers one organization", ("hr_manager", "finance_manager", "sales_manager"),
     ("auth.users:*", "auth.organizations:*", "auth.roles:read")),
    ("super_admin", "Operates the whole platform", ("admin",), ("*.*:*",)),
)

ROLE_NAMES = tuple(name for name, *_ in ROLES)
