from handlers.finance.accounts import ACCOUNTS
from runtime import endpoint


@endpoint("PATCH", "/api/v1/finance/accounts/{id}", permission="finance.accounts:update", invalidates=("finance_accounts",),
          body=ACCOUNTS.update_body, response=ACCOUNTS.message)
async def update_account(req, ctx, id):
    """Change some fields of an account; the fields sent are the update mask, the rest keep their values."""
    return await ACCOUNTS.update(ctx, id)
