from handlers.crm.deals import DEALS
from runtime import endpoint


@endpoint("PATCH", "/api/v1/crm/deals/{id}", permission="crm.deals:update", invalidates=("crm_deals",),
          body=DEALS.update_body, response=DEALS.message)
async def update_deal(req, ctx, id):
    """Change some fields of a deal; the fields sent are the update mask, the rest keep their values."""
    return await DEALS.update(ctx, id)
