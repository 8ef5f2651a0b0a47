"""The roles and permissions the auth emulator reports: the catalogue of the auth contract
(proto.erp.auth.v1.contract), which is also the gateway's shipped policy, so ListRoles
never disagrees with what the gateway enforces.
"""

from __future__ import annotations

from proto.erp.auth.v1.contract import PERMISSIONS, ROLES as CATALOGUE

__all__ = ["PERMISSIONS", "ROLES", "ROLE_NAMES"]

# (name, description, parents, permissions), lowest first as declared.
ROLES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = tuple(
    (name, role["description"], tuple(role["parents"]), tuple(role["permissions"]))
    for name, role in CATALOGUE.items()
)

ROLE_NAMES = tuple(CATALOGUE)
