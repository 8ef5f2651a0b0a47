from handlers.crm.contacts import CONTACTS
from runtime import endpoint


@endpoint("PATCH", "/api/v1/crm/contacts/{id}", permission="crm.contacts:update", invalidates=("crm_contacts",),
          body=CONTACTS.update_body, response=CONTACTS.message)
async def update_contact(req, ctx, id):
    """Change some fields of a contact; the fields sent are the update mask, the rest keep their values."""
    return await CONTACTS.update(ctx, id)
