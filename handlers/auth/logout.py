import logging
import time

from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.errors import ValidationFailed
from runtime.schema import Body, Field

log = logging.getLogger("gateway.auth")

LOGOUT = Body("LogoutRequest", {"refresh_token": Field(str, required=False, min_length=1, max_length=512)})
NOT_THIS_SESSION = "is not a refresh token of this session"


@endpoint("POST", "/api/v1/auth/logout", body=LOGOUT)  # data: null
async def logout(req, ctx):
    """Sign out: revoke this session's access tokens everywhere and its refresh-token family.

    The session ended is always the one of the access token presented. A `refresh_token` in
    the body must be one of that session's: another session's or user's is refused (400),
    and that other session is left untouched (this one still ends)."""
    principal = ctx.principal
    revocations = ctx.resources.revocations
    await revocations.revoke(principal.token_id, principal.expires_at)
    if principal.session_id:
        # Other access tokens of this session (minted by earlier refreshes) live at most one
        # token lifetime from now; the auth service mints no new ones once the family is revoked.
        session_id = principal.revocation_ids[1]
        await revocations.revoke(session_id, time.time() + (principal.expires_at - principal.issued_at))
    auth, token, refused = ctx.backends.auth, ctx.body.get("refresh_token", ""), False
    answer = auth_pb2.RevokeTokenResponse(revoked=False)
    try:
        if token or principal.session_id:
            answer = await auth.RevokeToken(auth_pb2.RevokeTokenRequest(
                refresh_token=token, session_id=principal.session_id))
    except ValidationFailed:  # the auth service changed nothing: end this session by its id
        refused = True
        if principal.session_id:
            answer = await auth.RevokeToken(auth_pb2.RevokeTokenRequest(session_id=principal.session_id))
    if not answer.revoked:  # no live session behind a verified token: already ended, or unknown
        log.warning("logout found no live session to revoke",
                    extra={"request_id": ctx.request_id, "user_id": principal.user_id})
    if refused:
        raise ValidationFailed("This session was ended; the refresh token sent is not one of its own",
                               errors={"refresh_token": [NOT_THIS_SESSION]})
    return Reply(None, message="Logged out")
