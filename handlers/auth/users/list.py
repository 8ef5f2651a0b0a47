from handlers.auth.users import USERS
from runtime import endpoint


@endpoint("GET", "/api/v1/auth/users", permission="auth.users:read", query=USERS.query, tags=["auth"],
          response=USERS.page)
async def list_users(req, ctx):
    """The users of your organization, a page at a time."""
    return await USERS.list(ctx)
