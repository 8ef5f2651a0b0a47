from handlers.finance.invoices import INVOICES
from runtime import endpoint


@endpoint("GET", "/api/v1/finance/invoices", permission="finance.invoices:read", cache="finance_invoices",
          query=INVOICES.query, response=INVOICES.page)
async def list_invoices(req, ctx):
    """List invoices, a page at a time; filter by status and customer_id."""
    return await INVOICES.list(ctx)
