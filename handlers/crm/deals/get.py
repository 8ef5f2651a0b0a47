from handlers.crm.deals import DEALS
from runtime import endpoint


@endpoint("GET", "/api/v1/crm/deals/{id}", permission="crm.deals:read", cache="crm_deals",
          etag=True, response=DEALS.message)
async def get_deal(req, ctx, id):
    """One deal; send its ETag back in If-None-Match to get 304 while it is unchanged."""
    return await DEALS.get(ctx, id)
