from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.auth.user_admin import set_role


@endpoint("DELETE", "/api/v1/auth/users/{id}/roles/{role}", permission="auth.roles:update", tags=["auth"],
          response=auth_pb2.User)
async def revoke_role(req, ctx, id, role):
    """Take a role from a user; their sessions end at once, on every instance."""
    return Reply(await set_role(ctx, id, role, held=False), message="Role revoked")
