from handlers.crm.contacts import CONTACTS
from runtime import endpoint


@endpoint("DELETE", "/api/v1/crm/contacts/{id}", permission="crm.contacts:delete", invalidates=("crm_contacts",))
async def delete_contact(req, ctx, id):
    """Delete a contact; answers 200 with the envelope and null data."""
    return await CONTACTS.delete(ctx, id)
