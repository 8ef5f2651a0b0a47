"""What login, register, refresh and logout share: the sign-in answer, session revocation."""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping

from proto.erp.auth.v1 import auth_pb2
from proto.erp.auth.v1.contract import REVOKED_SESSION_TRAILER
from runtime.auth.principal import SESSION_PREFIX
from runtime.errors import ApiError, Unauthenticated, ValidationFailed
from runtime.protobuf import to_dict
from runtime.responses import Record

log = logging.getLogger("gateway.auth")

# The `data` of login, register and refresh, as token_answer builds it.
TOKEN_ANSWER = Record("TokenAnswer", {
    "user": auth_pb2.User,
    "access_token": {"type": "string", "description": "RS256 JWT (RFC 9068); send as `Authorization: Bearer ...`"},
    "refresh_token": {"type": "string", "description": "Opaque, single use: trade it at /api/v1/auth/refresh"},
    "token_type": {"const": "Bearer"},
    "expires_in": {"type": "integer", "minimum": 0, "description": "Seconds until the access token expires"},
}, doc="A signed-in session: the user and a token pair")



def token_answer(tokens: Any) -> dict[str, Any]:
    """An auth TokenResponse as the REST contract shapes it (DESIGN.md section 3)."""
    return {
        "user": to_dict(tokens.user),
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": "Bearer",
        "expires_in": int(tokens.expires_in),
    }


async def sign_in(ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
    """Password sign-in (REST login and the GraphQL `login` mutation), with a validated body
    `{email, password, remember_me}`: the account's failure budget (runtime.security.
    account_lockout) is checked before the password and spent by a failure; both outcomes
    are business events. The token answer."""
    email, lockout = body["email"].lower(), ctx.resources.lockout
    if lockout is not None:
        await lockout.check(email)  # the account's failure budget, across every address
    try:
        tokens = await ctx.backends.auth.Authenticate(auth_pb2.AuthenticateRequest(
            email=email, password=body["password"], remember_me=bool(body.get("remember_me"))))
    except Unauthenticated as error:
        if lockout is not None:
            await lockout.failed(email, ctx.client_ip)
        ctx.events.emit("erp.auth.login.failed", subject=email,
                        data={"email": email, "reason": error.message, "client_ip": ctx.client_ip})
        raise
    answer = token_answer(tokens)
    user = answer["user"]
    ctx.events.emit("erp.auth.login.succeeded", subject=user["id"],
                    data={"user_id": user["id"], "email": user["email"], "organization_id": user["organization_id"],
                          "remember_me": bool(body.get("remember_me")), "client_ip": ctx.client_ip})
    return answer


async def revoke_replayed_session(ctx: Any, error: ApiError) -> str | None:
    """After a refresh-token replay the auth service revoked the family; refuse the family's
    access tokens on every gateway instance too, not only its refresh tokens. Returns the
    session id when it was a replay."""
    told = error.backend_trailers.get(REVOKED_SESSION_TRAILER, "").split()
    if len(told) == 2:
        session_id, until = told
        await ctx.resources.revocations.revoke(SESSION_PREFIX + session_id, float(until))
        return session_id
    return None


NOT_THIS_SESSION = "is not a refresh token of this session"


async def end_session(ctx: Any, refresh_token: str = "") -> None:
    """Logout (REST and GraphQL): revoke this access token and every other of its session on
    every instance, then the session's refresh-token family at the auth service.

    The session ended is always the one of the access token presented. A `refresh_token`
    must be one of that session's: another session's or user's is refused (400, after this
    session has ended) and that other session is left untouched."""
    principal = ctx.principal
    revocations = ctx.resources.revocations
    await revocations.revoke(principal.token_id, principal.expires_at)
    if principal.session_id:
        # Other access tokens of this session (minted by earlier refreshes) live at most one
        # token lifetime from now; the auth service mints no new ones once the family is revoked.
        session_id = principal.revocation_ids[1]
        await revocations.revoke(session_id, time.time() + (principal.expires_at - principal.issued_at))
    auth, refused = ctx.backends.auth, False
    answer = auth_pb2.RevokeTokenResponse(revoked=False)
    try:
        if refresh_token or principal.session_id:
            answer = await auth.RevokeToken(auth_pb2.RevokeTokenRequest(
                refresh_token=refresh_token, session_id=principal.session_id))
    except ValidationFailed:  # the auth service changed nothing: end this session by its id
        refused = True
        if principal.session_id:
            answer = await auth.RevokeToken(auth_pb2.RevokeTokenRequest(session_id=principal.session_id))
    if not answer.revoked:  # no live session behind a verified token: already ended, or unknown
        log.warning("logout found no live session to revoke",
                    extra={"request_id": ctx.request_id, "user_id": principal.user_id})
    ctx.events.emit("erp.auth.logout", subject=principal.user_id,
                    data={"user_id": principal.user_id, "session_id": principal.session_id,
                          "refresh_token_revoked": bool(answer.revoked)})
    if refused:
        raise ValidationFailed("This session was ended; the refresh token sent is not one of its own",
                               errors={"refresh_token": [NOT_THIS_SESSION]})
