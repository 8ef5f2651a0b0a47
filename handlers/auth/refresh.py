from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.auth.session import TOKEN_ANSWER, revoke_replayed_session, token_answer
from runtime.errors import Unauthenticated
from runtime.schema import Body, Field

REFRESH = Body("RefreshRequest", {"refresh_token": Field(str, min_length=1, max_length=512)})


# A refresh token is short: 4 KiB is ample, and anything bigger is not a client of ours.
@endpoint("POST", "/api/v1/auth/refresh", auth=False, body=REFRESH, max_body_bytes=4096, response=TOKEN_ANSWER,
          errors={401: "The refresh token is unknown, spent or expired (a spent one also revokes its session)"})
async def refresh(req, ctx):
    """Trade a refresh token for a new token pair; the old refresh token is spent, and
    presenting it again revokes every token of its session."""
    try:
        tokens = await ctx.backends.auth.RefreshToken(
            auth_pb2.RefreshTokenRequest(refresh_token=ctx.body["refresh_token"])
        )
    except Unauthenticated as error:
        await revoke_replayed_session(ctx, error)
        raise
    return Reply(token_answer(tokens), message="Token refreshed")
