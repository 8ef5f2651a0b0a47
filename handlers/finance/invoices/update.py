from handlers.finance.invoices import INVOICES
from runtime import endpoint


@endpoint("PATCH", "/api/v1/finance/invoices/{id}", permission="finance.invoices:update", invalidates=("finance_invoices",),
          body=INVOICES.update_body, response=INVOICES.message)
async def update_invoice(req, ctx, id):
    """Change some fields of an invoice; the fields sent are the update mask, the rest keep their values."""
    return await INVOICES.update(ctx, id)
