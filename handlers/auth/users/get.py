from handlers.auth.users import USERS
from runtime import endpoint


@endpoint("GET", "/api/v1/auth/users/{id}", permission="auth.users:read", tags=["auth"], response=USERS.message)
async def get_user(req, ctx, id):
    """One user of your organization (another organization's id is 404)."""
    return await USERS.get(ctx, id)
