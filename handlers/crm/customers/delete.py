from handlers.crm.customers import CUSTOMERS
from runtime import endpoint


@endpoint("DELETE", "/api/v1/crm/customers/{id}", permission="crm.customers:delete", invalidates=("crm_customers",))
async def delete_customer(req, ctx, id):
    """Delete a customer; answers 200 with the envelope and null data."""
    return await CUSTOMERS.delete(ctx, id)
