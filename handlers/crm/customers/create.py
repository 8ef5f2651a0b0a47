from handlers.crm.customers import CUSTOMERS
from runtime import endpoint


@endpoint("POST", "/api/v1/crm/customers", permission="crm.customers:create", invalidates=("crm_customers",),
          body=CUSTOMERS.create_body, status=201, response=CUSTOMERS.message)
async def create_customer(req, ctx):
    """Create a customer; answers 201 with it and its Location."""
    return await CUSTOMERS.create(ctx)
