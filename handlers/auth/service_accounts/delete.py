from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.auth.service_accounts import revoke_generation


@endpoint("DELETE", "/api/v1/auth/service-accounts/{id}", permission="auth.service_accounts:delete", tags=["auth"])
async def delete_service_account(req, ctx, id):
    """Delete a service account: its secret and every token it holds stop working at once."""
    # Revoke first, so that a failed revocation (503) leaves the account whole for a retry.
    current = await ctx.backends.auth.GetServiceAccount(auth_pb2.ServiceAccountRef(id=id))
    await revoke_generation(ctx.resources, current.generation)
    await ctx.backends.auth.DeleteServiceAccount(auth_pb2.ServiceAccountRef(id=id))
    return Reply(None, message="Service account deleted")
