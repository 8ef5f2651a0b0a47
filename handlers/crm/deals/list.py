from handlers.crm.deals import DEALS
from runtime import endpoint


@endpoint("GET", "/api/v1/crm/deals", permission="crm.deals:read", cache="crm_deals",
          query=DEALS.query, response=DEALS.page)
async def list_deals(req, ctx):
    """List deals, a page at a time; filter by customer_id and stage."""
    return await DEALS.list(ctx)
