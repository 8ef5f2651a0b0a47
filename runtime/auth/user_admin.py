"""Managing users (REST and GraphQL alike): who may change whom, and making a change reach
the changed user's very next request.

Tenancy is the auth service's: it scopes every user call by the caller's organization, so
another organization's user is NOT_FOUND. The gateway adds what only it knows, the live RBAC
policy: nobody grants a role whose permissions they do not hold themselves, nor changes a
user who holds more than they do (an admin cannot demote or disable a super_admin), nor
changes their own roles or disables themselves.

A role is a claim of the access token, so a change of roles (or a deactivation) would not
be seen until the token expired. The auth service ends the user's sessions and names them;
here every access token of those sessions is revoked on every instance (the same
`session:<sid>` revocations as logout), and the user's cached profile (`user_profile`,
scoped per user) is invalidated, near caches included. The user's next request is a 401,
and signing in again gives a token with the new roles.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from google.protobuf.field_mask_pb2 import FieldMask

from proto.erp.auth.v1 import auth_pb2
from runtime.auth.principal import SESSION_PREFIX
from runtime.errors import Conflict, Forbidden, ValidationFailed
from runtime.protobuf import to_dict
from runtime.rbac import covers, parse_grants

# The cache policies holding one user's own view of themselves (GET /api/v1/auth/me, `me`).
PROFILE_POLICIES = ("user_profile",)


def held_grants(ctx: Any) -> frozenset[tuple[str, str, str]]:
    """Every grant the caller holds: a person's roles' (inherited ones included), or a
    service account's own."""
    principal = ctx.principal
    if principal.permissions is not None:
        return parse_grants(principal.permissions)
    return ctx.resources.policy.held(principal.roles)


def _beyond(ctx: Any, roles: Iterable[str]) -> list[str]:
    """The roles among `roles` that grant something the caller does not hold."""
    held, policy = held_grants(ctx), ctx.resources.policy
    return [role for role in roles if not all(covers(held, "{}.{}:{}".format(*grant))
                                              for grant in policy.held((role,)))]


def check_grantable(ctx: Any, roles: Iterable[str], field: str) -> None:
    """Roles the caller may hand out: known to the policy and within the caller's grants."""
    roles = list(roles)
    unknown = [r for r in roles if r not in ctx.resources.policy.grants]
    if unknown:
        known = ", ".join(ctx.resources.policy.grants)
        raise ValidationFailed(errors={field: [f"unknown role {r[:64]!r} (known: {known})" for r in unknown[:20]]})
    beyond = _beyond(ctx, roles)
    if beyond:
        raise Forbidden("You cannot grant a role above your own",
                        errors={field: [f"{r} grants more than you hold" for r in beyond]})


async def manageable_user(ctx: Any, user_id: str, *, self_field: str | None = None) -> Any:
    """The user `user_id` of the caller's organization (NOT_FOUND otherwise), when the caller
    holds at least every grant the user holds. With `self_field`, the caller may not be
    that user (their own roles, their own deactivation)."""
    user = await ctx.backends.auth.GetUser(auth_pb2.GetUserRequest(id=user_id))
    if self_field is not None and user.id == ctx.principal.user_id:
        raise Forbidden("You cannot change your own roles or deactivate yourself",
                        errors={self_field: ["another administrator has to make this change"]})
    if _beyond(ctx, user.roles):
        raise Forbidden("You cannot change a user who holds more than you do",
                        errors={"id": ["this user holds grants beyond your own"]})
    return user


async def apply_change(ctx: Any, change: Any, event: str, **data: Any) -> dict[str, Any]:
    """After the auth service changed a user: refuse the access tokens of the sessions it
    ended, drop the user's cached profile, emit the event; the user as the API shows it."""
    user = change.user
    revocations = ctx.resources.revocations
    for session_id in change.ended_sessions:
        await revocations.revoke(SESSION_PREFIX + session_id, change.access_tokens_valid_until)
    cache = ctx.resources.cache
    if cache is not None:
        await cache.invalidate_user(user.id, PROFILE_POLICIES)
    record = to_dict(user)
    ctx.events.emit(event, subject=user.id, data={**record, **data,
                                                  "sessions_ended": len(change.ended_sessions)})
    return record


# -- the operations, as REST handlers and GraphQL resolvers both call them (validated bodies) --

async def create_user(ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
    """A new user of the caller's organization, with roles no higher than the caller's."""
    roles = list(body.get("roles") or ["employee"])
    check_grantable(ctx, roles, "roles")
    try:
        user = await ctx.backends.auth.CreateUser(auth_pb2.CreateUserRequest(
            email=body["email"].lower(), first_name=body["first_name"].strip(), last_name=body["last_name"].strip(),
            password=body["password"], roles=roles))
    except Conflict:
        raise Conflict("A user with this email already exists", errors={"email": ["is already registered"]}) from None
    record = to_dict(user)
    ctx.events.emit("erp.auth.user.created", subject=user.id, data=record)
    return record


async def update_user(ctx: Any, user_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Rename, deactivate or reactivate a user: the fields of `body`, exactly."""
    await manageable_user(ctx, user_id, self_field="is_active" if "is_active" in body else None)
    change = await ctx.backends.auth.UpdateUser(auth_pb2.UpdateUserRequest(
        user=auth_pb2.User(id=user_id, **body), update_mask=FieldMask(paths=sorted(body))))
    return await apply_change(ctx, change, "erp.auth.user.updated", changed=sorted(body))


async def set_role(ctx: Any, user_id: str, role: str, held: bool) -> dict[str, Any]:
    """Give (`held`) or take one role, neither above the caller's own."""
    await manageable_user(ctx, user_id, self_field="role")
    check_grantable(ctx, [role], "role")
    request = auth_pb2.UserRoleRequest(user_id=user_id, role=role)
    if held:
        change = await ctx.backends.auth.AssignRole(request)
    else:
        change = await ctx.backends.auth.RevokeRole(request)
    return await apply_change(ctx, change, "erp.auth.user.role-" + ("assigned" if held else "revoked"), role=role)
