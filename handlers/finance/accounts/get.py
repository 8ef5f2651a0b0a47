from handlers.finance.accounts import ACCOUNTS
from runtime import endpoint


@endpoint("GET", "/api/v1/finance/accounts/{id}", permission="finance.accounts:read", cache="finance_accounts",
          etag=True, response=ACCOUNTS.message)
async def get_account(req, ctx, id):
    """One account; send its ETag back in If-None-Match to get 304 while it is unchanged."""
    return await ACCOUNTS.get(ctx, id)
