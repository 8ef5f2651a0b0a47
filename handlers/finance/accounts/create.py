from handlers.finance.accounts import ACCOUNTS
from runtime import endpoint


@endpoint("POST", "/api/v1/finance/accounts", permission="finance.accounts:create", invalidates=("finance_accounts",),
          body=ACCOUNTS.create_body, status=201, response=ACCOUNTS.message)
async def create_account(req, ctx):
    """Create an account; answers 201 with it and its Location."""
    return await ACCOUNTS.create(ctx)
