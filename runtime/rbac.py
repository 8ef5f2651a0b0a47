"""Hierarchical role-based access control.

A role inherits every grant of its `parents` (the roles directly below it), transitively,
never the reverse: `admin` gets all that `manager` has, `manager` none of `admin`'s extras.
Permissions are `domain.resource:action`; a grant may use `*` for any one segment.
The policy is configuration (`rbac.roles`); its closure is computed once at start-up, and
decisions are memoised, so a check on the request path is a dict lookup.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

_SEGMENT = r"(?:[a-z][a-z0-9_]*|\*)"
_GRANT = re.compile(rf"^{_SEGMENT}\.{_SEGMENT}:{_SEGMENT}$")
_REQUIRED = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$")

def is_required_permission(permission: str) -> bool:
    """What a route may require: concrete segments, no wildcard."""
    return bool(_REQUIRED.match(permission))


def check_roles(roles: Mapping[str, Any]) -> None:
    """Config hook: grants well-formed, parents known, no cycle. Raises ValueError naming the role."""
    for name, role in roles.items():
        for grant in role.permissions:
            if not _GRANT.match(grant):
                raise ValueError(f"roles.{name}.permissions: {grant!r} is not valid "
                                 "(expected domain.resource:action, each segment a name or *)")
        for parent in role.parents:
            if parent not in roles:
                raise ValueError(f"roles.{name}.parents: unknown role {parent!r} (known roles: {', '.join(roles)})")
    state: dict[str, str] = {}  # name -> "visiting" | "done"

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = path[path.index(name):] + [name]
            raise ValueError(f"roles form an inheritance cycle: {' -> '.join(cycle)}")
        state[name] = "visiting"
        for parent in roles[name].parents:
            visit(parent, path + [name])
        state[name] = "done"

    for name in roles:
        visit(name, [])


def is_grant(grant: str) -> bool:
    """`domain.resource:action`, each segment a name or `*`."""
    return _GRANT.match(grant) is not None and not grant.endswith("\n")


def grants_allow(grants: Iterable[str], permission: str) -> bool:
    """Whether explicit grants (a service account's) allow a required permission."""
    wanted = _split(permission)
    return any(_matches(_split(g), wanted) for g in grants)


def parse_grants(grants: Iterable[str]) -> frozenset[tuple[str, str, str]]:
    return frozenset(_split(g) for g in grants)


def covers(held: Iterable[tuple[str, str, str]], grant: str) -> bool:
    """Whether grants already held include everything `grant` would allow: used so that
    nobody hands a service account more than they hold themselves."""
    wanted = _split(grant)
    return any(all(h == "*" or h == w for h, w in zip(have, wanted)) for have in held)


def _matches(grant: tuple[str, str, str], wanted: tuple[str, str, str]) -> bool:
    return all(g == "*" or g == w for g, w in zip(grant, wanted))


def _split(permission: str) -> tuple[str, str, str]:
    scope, _, action = permission.partition(":")
    domain, _, resource = scope.partition(".")
    return domain, resource, action


class Policy:
    def __init__(self, roles: Mapping[str, Any]) -> None:
        check_roles(roles)
        self.grants: dict[str, frozenset[tuple[str, str, str]]] = {}
        for name in roles:
            self.grants[name] = frozenset(_split(p) for r in self._inherited(roles, name) for p in roles[r].permissions)
        self._decisions: dict[tuple[tuple[str, ...], str], bool] = {}

    @staticmethod
    def _inherited(roles: Mapping[str, Any], name: str) -> set[str]:
        seen, todo = set(), [name]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(roles[current].parents)
        return seen

    def held(self, roles: Iterable[str]) -> frozenset[tuple[str, str, str]]:
        """Every grant the roles carry, inherited ones included."""
        return frozenset(g for role in roles for g in self.grants.get(role, ()))

    def allows(self, roles: Iterable[str], permission: str) -> bool:
        key = (tuple(roles), permission)
        decision = self._decisions.get(key)
        if decision is None:
            wanted = _split(permission)
            # Unknown roles (say, from a newer auth service) grant nothing.
            decision = any(_matches(g, wanted) for role in key[0] for g in self.grants.get(role, ()))
            if len(self._decisions) < 100_000:  # bounded: role sets come from tokens
                self._decisions[key] = decision
        return decision
