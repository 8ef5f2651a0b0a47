from handlers.finance.invoices import INVOICES
from runtime import endpoint


@endpoint("POST", "/api/v1/finance/invoices", permission="finance.invoices:create", invalidates=("finance_invoices",),
          body=INVOICES.create_body, status=201, response=INVOICES.message)
async def create_invoice(req, ctx):
    """Create an invoice; answers 201 with it and its Location."""
    return await INVOICES.create(ctx)
