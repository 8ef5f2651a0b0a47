from handlers.finance.accounts import ACCOUNTS
from runtime import endpoint


@endpoint("GET", "/api/v1/finance/accounts", permission="finance.accounts:read", cache="finance_accounts",
          query=ACCOUNTS.query, response=ACCOUNTS.page)
async def list_accounts(req, ctx):
    """List accounts, a page at a time."""
    return await ACCOUNTS.list(ctx)
