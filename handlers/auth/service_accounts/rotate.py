from handlers.auth.service_accounts import WITH_SECRET
from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.auth.service_accounts import revoke_generation
from runtime.protobuf import to_dict


@endpoint("POST", "/api/v1/auth/service-accounts/{id}/rotate", permission="auth.service_accounts:update",
          tags=["auth"], response=WITH_SECRET)
async def rotate_service_account(req, ctx, id):
    """A new client secret (shown once); the old one and every token it obtained stop working."""
    # Revoke first: if the revocation cannot be stored (503), nothing has changed and the
    # client retries; rotating first could lose the new secret with the answer.
    current = await ctx.backends.auth.GetServiceAccount(auth_pb2.ServiceAccountRef(id=id))
    await revoke_generation(ctx.resources, current.generation)
    rotated = await ctx.backends.auth.RotateServiceAccountSecret(auth_pb2.ServiceAccountRef(id=id))
    answer = to_dict(rotated.account)
    answer["client_secret"] = rotated.client_secret
    return Reply(answer, message="Secret rotated; store the new client secret now, it is not shown again")
