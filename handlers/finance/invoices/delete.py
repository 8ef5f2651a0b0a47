from handlers.finance.invoices import INVOICES
from runtime import endpoint


@endpoint("DELETE", "/api/v1/finance/invoices/{id}", permission="finance.invoices:delete", invalidates=("finance_invoices",))
async def delete_invoice(req, ctx, id):
    """Delete an invoice; answers 200 with the envelope and null data."""
    return await INVOICES.delete(ctx, id)
