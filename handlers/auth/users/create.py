from handlers.auth.users import CREATE
from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.auth.user_admin import create_user as create


@endpoint("POST", "/api/v1/auth/users", permission="auth.users:create", body=CREATE, status=201, tags=["auth"],
          response=auth_pb2.User)
async def create_user(req, ctx):
    """Add a user to your organization, with roles no higher than your own (default: employee)."""
    user = await create(ctx, ctx.body)
    return Reply(user, message="User created", headers={"Location": f"/api/v1/auth/users/{user['id']}"})
