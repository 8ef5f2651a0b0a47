from runtime import Reply, endpoint
from runtime.auth.session import end_session
from runtime.schema import Body, Field

LOGOUT = Body("LogoutRequest", {"refresh_token": Field(str, required=False, min_length=1, max_length=512)})


@endpoint("POST", "/api/v1/auth/logout", body=LOGOUT)  # data: null
async def logout(req, ctx):
    """Sign out: revoke this session's access tokens everywhere and its refresh-token family.

    The session ended is always the one of the access token presented. A `refresh_token` in
    the body must be one of that session's: another session's or user's is refused (400),
    and that other session is left untouched (this one still ends)."""
    await end_session(ctx, ctx.body.get("refresh_token", ""))
    return Reply(None, message="Logged out")
