import contextlib

from valkey.exceptions import ValkeyError

from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint, realtime
from runtime.auth.session import TOKEN_ANSWER, token_answer
from runtime.errors import Conflict
from runtime.schema import EMAIL, NEW_PASSWORD, Body, Field, same_as, text

REGISTER = Body(
    "RegisterRequest",
    {
        "first_name": text(1, 100),
        "last_name": text(1, 100),
        "email": EMAIL,
        "password": NEW_PASSWORD,
        "password_confirmation": Field(str, max_length=128, doc="Must equal password"),
        "organization_name": text(1, 200),
        "domain": Field(str, format="domain", max_length=253, doc="The organization's domain, e.g. acme.com"),
    },
    checks=(same_as("password_confirmation", "password", "must match password"),),
)
# One answer whether the email, the domain or both are taken: registration must not tell
# who has an account (the auth service answers alike after the same work, too).
TAKEN = "this email or domain cannot be registered"


# Its own budgets on top of the anonymous one: per address, and per domain whatever the address.
@endpoint("POST", "/api/v1/auth/register", auth=False, body=REGISTER, status=201, response=TOKEN_ANSWER,
          rate_limit=("register", "register_domain"))
async def register(req, ctx):
    """Create an organization and its first admin, and sign them in."""
    body = ctx.body
    try:
        tokens = await ctx.backends.auth.Register(
            auth_pb2.RegisterRequest(
                first_name=body["first_name"].strip(),
                last_name=body["last_name"].strip(),
                email=body["email"].lower(),
                password=body["password"],
                organization_name=body["organization_name"].strip(),
                domain=body["domain"].lower(),
            )
        )
    except Conflict:
        raise Conflict("Registration failed: " + TAKEN, errors={"email": [TAKEN], "domain": [TAKEN]}) from None
    user = tokens.user
    # Announce the new member on their organization's channel (best effort: a realtime
    # outage must not fail a registration that has already happened).
    with contextlib.suppress(ValkeyError, OSError):
        await realtime.publish(f"org:{user.organization_id}", {
            "event": "user.registered",
            "user": {"id": user.id, "email": user.email, "first_name": user.first_name, "last_name": user.last_name},
        }, sender=user.id)
    # Every 201 names what it created: the new user, as the caller sees them.
    return Reply(token_answer(tokens), message="Registration successful", headers={"Location": "/api/v1/auth/me"})
