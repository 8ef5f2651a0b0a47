from handlers.crm.deals import DEALS
from runtime import endpoint


@endpoint("DELETE", "/api/v1/crm/deals/{id}", permission="crm.deals:delete", invalidates=("crm_deals",))
async def delete_deal(req, ctx, id):
    """Delete a deal; answers 200 with the envelope and null data."""
    return await DEALS.delete(ctx, id)
