from handlers.auth.service_accounts import CREATE, WITH_SECRET
from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.errors import Forbidden, ValidationFailed
from runtime.protobuf import to_dict
from runtime.rbac import covers, is_grant, parse_grants


@endpoint("POST", "/api/v1/auth/service-accounts", permission="auth.service_accounts:create", body=CREATE,
          status=201, tags=["auth"], response=WITH_SECRET)
async def create_service_account(req, ctx):
    """Create a service account of your organization; its client secret is shown only here."""
    grants = ctx.body["permissions"]
    bad = [g for g in grants if not is_grant(g)]
    if bad:
        raise ValidationFailed(errors={"permissions": [f"{g[:100]!r} is not domain.resource:action" for g in bad[:20]]})
    principal = ctx.principal
    held = (ctx.resources.policy.held(principal.roles) if principal.permissions is None
            else parse_grants(principal.permissions))
    beyond = [g for g in grants if not covers(held, g)]
    if beyond:
        raise Forbidden("A service account cannot be granted more than you hold",
                        errors={"permissions": [f"{g} is beyond your own grants" for g in beyond[:20]]})
    created = await ctx.backends.auth.CreateServiceAccount(
        auth_pb2.CreateServiceAccountRequest(name=ctx.body["name"], permissions=grants))
    answer = to_dict(created.account)
    answer["client_secret"] = created.client_secret
    return Reply(answer, message="Service account created; store the client secret now, it is not shown again",
                 headers={"Location": f"/api/v1/auth/service-accounts/{created.account.id}"})

