from handlers.crm.contacts import CONTACTS
from runtime import endpoint


@endpoint("GET", "/api/v1/crm/contacts", permission="crm.contacts:read", cache="crm_contacts",
          query=CONTACTS.query, response=CONTACTS.page)
async def list_contacts(req, ctx):
    """List contacts, a page at a time; filter by customer_id."""
    return await CONTACTS.list(ctx)
