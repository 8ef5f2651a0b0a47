from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.schema import Body, Field

LOGOUT = Body("LogoutRequest", {"refresh_token": Field(str, required=False, min_length=1, max_length=512)})


@endpoint("POST", "/api/v1/auth/logout", body=LOGOUT)
async def logout(req, ctx):
    """Sign out: revoke this access token everywhere and its whole refresh-token family."""
    principal = ctx.principal
    await ctx.resources.revocations.revoke(principal.token_id, principal.expires_at)
    await ctx.backends.auth.RevokeToken(
        auth_pb2.RevokeTokenRequest(
            refresh_token=ctx.body.get("refresh_token", ""), session_id=principal.session_id
        )
    )
    return Reply({"revoked": True}, message="Logged out")
