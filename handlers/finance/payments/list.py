from handlers.finance.payments import PAYMENTS
from runtime import endpoint


@endpoint("GET", "/api/v1/finance/payments", permission="finance.payments:read", cache="finance_payments",
          query=PAYMENTS.query, response=PAYMENTS.page)
async def list_payments(req, ctx):
    """List payments, a page at a time; filter by invoice_id."""
    return await PAYMENTS.list(ctx)
