import time

from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.schema import Body, Field

LOGOUT = Body("LogoutRequest", {"refresh_token": Field(str, required=False, min_length=1, max_length=512)})


@endpoint("POST", "/api/v1/auth/logout", body=LOGOUT)  # data: null
async def logout(req, ctx):
    """Sign out: revoke this session's access tokens everywhere and its refresh-token family."""
    principal = ctx.principal
    revocations = ctx.resources.revocations
    await revocations.revoke(principal.token_id, principal.expires_at)
    if principal.session_id:
        # Other access tokens of this session (minted by earlier refreshes) live at most one
        # token lifetime from now; the auth service mints no new ones once the family is revoked.
        session_id = principal.revocation_ids[1]
        await revocations.revoke(session_id, time.time() + (principal.expires_at - principal.issued_at))
    await ctx.backends.auth.RevokeToken(
        auth_pb2.RevokeTokenRequest(
            refresh_token=ctx.body.get("refresh_token", ""), session_id=principal.session_id
        )
    )
    return Reply(None, message="Logged out")
