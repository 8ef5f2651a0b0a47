from handlers.crm.customers import CUSTOMERS
from runtime import endpoint


@endpoint("PATCH", "/api/v1/crm/customers/{id}", permission="crm.customers:update", invalidates=("crm_customers",),
          body=CUSTOMERS.update_body, response=CUSTOMERS.message)
async def update_customer(req, ctx, id):
    """Change some fields of a customer; the fields sent are the update mask, the rest keep their values."""
    return await CUSTOMERS.update(ctx, id)
