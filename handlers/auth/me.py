from proto.erp.auth.v1 import auth_pb2
from runtime import endpoint
from runtime.protobuf import to_dict


@endpoint("GET", "/api/v1/auth/me", cache="user_profile", response=auth_pb2.User)
async def me(req, ctx):
    """The signed-in user's profile."""
    return to_dict(await ctx.backends.auth.GetUser(auth_pb2.GetUserRequest(id=ctx.principal.user_id)))
