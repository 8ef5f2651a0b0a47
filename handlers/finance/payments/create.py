from handlers.finance.payments import PAYMENTS
from runtime import endpoint


@endpoint("POST", "/api/v1/finance/payments", permission="finance.payments:create", invalidates=("finance_payments",),
          body=PAYMENTS.create_body, status=201, response=PAYMENTS.message)
async def create_payment(req, ctx):
    """Create a payment; answers 201 with it and its Location."""
    return await PAYMENTS.create(ctx)
