from handlers.auth.users import ROLE
from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.auth.user_admin import set_role


@endpoint("POST", "/api/v1/auth/users/{id}/roles", permission="auth.roles:update", body=ROLE, tags=["auth"],
          response=auth_pb2.User)
async def assign_role(req, ctx, id):
    """Give a user a role no higher than your own; their sessions end, so their next sign-in carries it."""
    return Reply(await set_role(ctx, id, ctx.body["role"], held=True), message="Role assigned")
