from handlers.auth.users import UPDATE
from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.auth.user_admin import update_user as update


@endpoint("PATCH", "/api/v1/auth/users/{id}", permission="auth.users:update", body=UPDATE, tags=["auth"],
          response=auth_pb2.User)
async def update_user(req, ctx, id):
    """Rename a user, or deactivate (`is_active: false`: every session of theirs ends at once) or reactivate one."""
    return Reply(await update(ctx, id, ctx.body), message="User updated")
