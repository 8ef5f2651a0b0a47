from handlers.finance.invoices import INVOICES
from runtime import endpoint


@endpoint("GET", "/api/v1/finance/invoices/{id}", permission="finance.invoices:read", cache="finance_invoices",
          etag=True, response=INVOICES.message)
async def get_invoice(req, ctx, id):
    """One invoice; send its ETag back in If-None-Match to get 304 while it is unchanged."""
    return await INVOICES.get(ctx, id)
