"""What login, register, refresh and logout share: the sign-in answer, session revocation."""

from __future__ import annotations

from typing import Any

from proto.erp.auth.v1 import auth_pb2
from proto.erp.auth.v1.contract import REVOKED_SESSION_TRAILER
from runtime.auth.principal import SESSION_PREFIX
from runtime.errors import ApiError
from runtime.protobuf import to_dict
from runtime.responses import Record

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


async def revoke_replayed_session(ctx: Any, error: ApiError) -> None:
    """After a refresh-token replay the auth service revoked the family; refuse the family's
    access tokens on every gateway instance too, not only its refresh tokens."""
    told = error.backend_trailers.get(REVOKED_SESSION_TRAILER, "").split()
    if len(told) == 2:
        session_id, until = told
        await ctx.resources.revocations.revoke(SESSION_PREFIX + session_id, float(until))
