from handlers.crm.customers import CUSTOMERS
from runtime import endpoint


@endpoint("GET", "/api/v1/crm/customers", permission="crm.customers:read", cache="crm_customers",
          query=CUSTOMERS.query, response=CUSTOMERS.page)
async def list_customers(req, ctx):
    """List customers, a page at a time; filter by status, search name and email with q."""
    return await CUSTOMERS.list(ctx)
