from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.auth.session import TOKEN_ANSWER, token_answer
from runtime.errors import Unauthenticated
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
    body = ctx.body
    email, lockout = body["email"].lower(), ctx.resources.lockout
    if lockout is not None:
        await lockout.check(email)  # the account's failure budget, across every address
    try:
        tokens = await ctx.backends.auth.Authenticate(
            auth_pb2.AuthenticateRequest(email=email, password=body["password"], remember_me=body["remember_me"])
        )
    except Unauthenticated:
        if lockout is not None:
            await lockout.failed(email, ctx.client_ip)
        raise
    return Reply(token_answer(tokens), message="Login successful")
