from handlers.crm.customers import CUSTOMERS
from runtime import endpoint


@endpoint("GET", "/api/v1/crm/customers/{id}", permission="crm.customers:read", cache="crm_customers",
          etag=True, response=CUSTOMERS.message)
async def get_customer(req, ctx, id):
    """One customer; send its ETag back in If-None-Match to get 304 while it is unchanged."""
    return await CUSTOMERS.get(ctx, id)
