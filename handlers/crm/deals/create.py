from handlers.crm.deals import DEALS
from runtime import endpoint


@endpoint("POST", "/api/v1/crm/deals", permission="crm.deals:create", invalidates=("crm_deals",),
          body=DEALS.create_body, status=201, response=DEALS.message)
async def create_deal(req, ctx):
    """Create a deal; answers 201 with it and its Location."""
    return await DEALS.create(ctx)
