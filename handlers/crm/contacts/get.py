from handlers.crm.contacts import CONTACTS
from runtime import endpoint


@endpoint("GET", "/api/v1/crm/contacts/{id}", permission="crm.contacts:read", cache="crm_contacts",
          etag=True, response=CONTACTS.message)
async def get_contact(req, ctx, id):
    """One contact; send its ETag back in If-None-Match to get 304 while it is unchanged."""
    return await CONTACTS.get(ctx, id)
