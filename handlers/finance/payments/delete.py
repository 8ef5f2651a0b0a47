from handlers.finance.payments import PAYMENTS
from runtime import endpoint


@endpoint("DELETE", "/api/v1/finance/payments/{id}", permission="finance.payments:delete", invalidates=("finance_payments",))
async def delete_payment(req, ctx, id):
    """Delete a payment; answers 200 with the envelope and null data."""
    return await PAYMENTS.delete(ctx, id)
