from handlers.finance.accounts import ACCOUNTS
from runtime import endpoint


@endpoint("DELETE", "/api/v1/finance/accounts/{id}", permission="finance.accounts:delete", invalidates=("finance_accounts",))
async def delete_account(req, ctx, id):
    """Delete an account; answers 200 with the envelope and null data."""
    return await ACCOUNTS.delete(ctx, id)
