from handlers.finance.payments import PAYMENTS
from runtime import endpoint


@endpoint("GET", "/api/v1/finance/payments/{id}", permission="finance.payments:read", cache="finance_payments",
          etag=True, response=PAYMENTS.message)
async def get_payment(req, ctx, id):
    """One payment; send its ETag back in If-None-Match to get 304 while it is unchanged."""
    return await PAYMENTS.get(ctx, id)
