"""Identity: the signed-in user, users, organizations, roles and permissions; sign-in flows.

Sign-in mutations validate with the REST bodies and count against the same `login` rate
limit as POST /api/v1/auth/login: GraphQL is not a way around either.
"""

from dataclasses import replace
from typing import Any

from handlers.auth.login import LOGIN
from handlers.auth.refresh import REFRESH
from handlers.auth.register import REGISTER
from handlers.auth.users import CREATE, ROLE, UPDATE, USERS
from proto.erp.auth.v1 import auth_pb2
from runtime.auth import user_admin
from runtime.auth.session import end_session, revoke_replayed_session, sign_in, token_answer
from runtime.errors import NotFound, Unauthenticated
from runtime.graphql import crud, resolver
from runtime.graphql.connections import cached_now
from runtime.protobuf import to_dict
from runtime.rest import Collection
from runtime.security.route_limits import derived

ORGANIZATIONS = Collection("auth", auth_pb2.Organization, fields={})


@resolver("Query", "gateway")
async def gateway(ctx, parent):
    return {"name": "erp-gateway"}


@resolver("Query", "me")
def me(ctx, parent):  # plain: with the near cache's data at hand there is nothing to await
    # The same cache entry as GET /api/v1/auth/me.
    user_id = ctx.principal.user_id
    return cached_now(ctx, "user_profile", "/api/v1/auth/me", lambda: _user(ctx, user_id))


async def _user(ctx, user_id):
    return to_dict(await ctx.backends.auth.GetUser(auth_pb2.GetUserRequest(id=user_id)))


@resolver("Query", "user")
async def user(ctx, parent, id):
    return await crud.related(ctx, USERS, id)


@resolver("Query", "users")
async def users(ctx, parent, first, after=None):
    return await crud.connection(ctx, USERS, "/api/v1/auth/users", first=first, after=after)


@resolver("Query", "organization")
async def organization(ctx, parent, id=None):
    own = ctx.principal.organization_id
    if id is not None and id != own:
        raise NotFound(f"Organization {id} not found")  # another tenant's id reads as absent
    return await crud.related(ctx, ORGANIZATIONS, own)


@resolver("User", "organization")
async def user_organization(ctx, user):
    return await crud.related(ctx, ORGANIZATIONS, user.get("organization_id"))


@resolver("User", "roles")
def user_roles(ctx, user):  # nothing to wait for: a plain function spares a coroutine per User
    return [{"name": name} for name in user.get("roles", ())]


async def _all_roles(ctx):
    """ListRoles once per request, however many Role objects ask."""
    memo = ctx.loaders.memo
    if "roles" not in memo:
        memo["roles"] = ctx.loaders.shared(_list_roles(ctx))
    return await memo["roles"]


async def _list_roles(ctx):
    answer = await ctx.backends.auth.ListRoles(auth_pb2.ListRolesRequest())
    return {role.name: to_dict(role) for role in answer.roles}


def _role_field(key):
    async def resolve(ctx, role):
        if key in role:
            return role[key]
        return (await _all_roles(ctx)).get(role["name"], {}).get(key)

    return resolve


role_description = resolver("Role", "description")(_role_field("description"))
role_parents = resolver("Role", "parents")(_role_field("parents"))
role_permissions = resolver("Role", "permissions")(_role_field("permissions"))


@resolver("Query", "roles")
async def roles(ctx, parent):
    return list((await _all_roles(ctx)).values())


@resolver("Query", "permissions")
async def permissions(ctx, parent):
    answer = await ctx.backends.auth.ListPermissions(auth_pb2.ListPermissionsRequest())
    return [to_dict(p) for p in answer.permissions]


async def _limit_login(ctx):
    """The `login` policy (per email and client IP), as on POST /api/v1/auth/login; reloaded
    with REST's when the policies change."""
    limits: Any = derived(ctx.resources, replace(ctx.route, rate_limit="login", body=LOGIN, auth="none"))
    if limits is not None:
        await limits.enforce(_Discard(), ctx)
        await limits.enforce_body(_Discard(), ctx)  # login's own budget is keyed on the email


class _Discard:
    def set_headers(self, headers):
        pass  # a field has no response headers of its own


@resolver("Mutation", "login")
async def login(ctx, parent, email, password, remember_me=False):
    ctx.body = body = LOGIN.validate({"email": email, "password": password, "remember_me": bool(remember_me)})
    await _limit_login(ctx)
    return await sign_in(ctx, body)  # REST login's own: the account lockout, the events


@resolver("Mutation", "register")
async def register(ctx, parent, input):
    body = REGISTER.validate(dict(input))
    tokens = await ctx.backends.auth.Register(auth_pb2.RegisterRequest(
        first_name=body["first_name"].strip(), last_name=body["last_name"].strip(), email=body["email"].lower(),
        password=body["password"], organization_name=body["organization_name"].strip(),
        domain=body["domain"].lower()))
    return token_answer(tokens)


@resolver("Mutation", "refresh")
async def refresh(ctx, parent, refresh_token):
    body = REFRESH.validate({"refresh_token": refresh_token})
    try:
        tokens = await ctx.backends.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=body["refresh_token"]))
    except Unauthenticated as error:
        await revoke_replayed_session(ctx, error)
        raise
    return token_answer(tokens)


@resolver("Mutation", "logout")
async def logout(ctx, parent, refresh_token=None):
    await end_session(ctx, refresh_token or "")
    return {"revoked": True}


@resolver("Mutation", "createUser")
async def create_user(ctx, parent, input):
    return await user_admin.create_user(ctx, CREATE.validate(dict(input)))


@resolver("Mutation", "updateUser")
async def update_user(ctx, parent, id, input):
    return await user_admin.update_user(ctx, id, UPDATE.validate(dict(input)))


@resolver("Mutation", "assignRole")
async def assign_role(ctx, parent, user_id, role):
    return await user_admin.set_role(ctx, user_id, ROLE.validate({"role": role})["role"], held=True)


@resolver("Mutation", "revokeRole")
async def revoke_role(ctx, parent, user_id, role):
    return await user_admin.set_role(ctx, user_id, ROLE.validate({"role": role})["role"], held=False)
