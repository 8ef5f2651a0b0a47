from runtime import Reply, endpoint
from runtime.auth.session import TOKEN_ANSWER, sign_in
from runtime.schema import EMAIL, Body, Field

LOGIN = Body(
    "LoginRequest",
    {
        "email": EMAIL,
        "password": Field(str, min_length=1, max_length=128),
        "remember_me": Field(bool, required=False, default=False, doc="Longer-lived refresh token"),
    },
)


@endpoint("POST", "/api/v1/auth/login", auth=False, body=LOGIN, rate_limit="login", response=TOKEN_ANSWER,
          errors={401: "Wrong email or password, or the account is disabled"})
async def login(req, ctx):
    """Sign in with email and password; returns an access and a refresh token."""
    return Reply(await sign_in(ctx, ctx.body), message="Login successful")
