from handlers.crm.contacts import CONTACTS
from runtime import endpoint


@endpoint("POST", "/api/v1/crm/contacts", permission="crm.contacts:create", invalidates=("crm_contacts",),
          body=CONTACTS.create_body, status=201, response=CONTACTS.message)
async def create_contact(req, ctx):
    """Create a contact; answers 201 with it and its Location."""
    return await CONTACTS.create(ctx)
