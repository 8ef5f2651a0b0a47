"""CRM: customers, their contacts and deals."""

from handlers.crm.contacts import CONTACTS
from handlers.crm.customers import CUSTOMERS
from handlers.crm.deals import DEALS
from handlers.graphql.resolvers.identity import USERS
from runtime.graphql import crud, resolver

CUSTOMERS_PATH, CONTACTS_PATH, DEALS_PATH = "/api/v1/crm/customers", "/api/v1/crm/contacts", "/api/v1/crm/deals"


@resolver("Query", "customers")
async def customers(ctx, parent, first, after=None, status=None, q=None):
    return await crud.connection(ctx, CUSTOMERS, CUSTOMERS_PATH, first=first, after=after, cache="crm_customers",
                                 filters={"status": status, "q": q})


@resolver("Query", "customer")
async def customer(ctx, parent, id):
    return await crud.get(ctx, CUSTOMERS, id, CUSTOMERS_PATH, "crm_customers")


@resolver("Query", "contacts")
async def contacts(ctx, parent, first, after=None, customer_id=None):
    return await crud.connection(ctx, CONTACTS, CONTACTS_PATH, first=first, after=after, cache="crm_contacts",
                                 filters={"customer_id": customer_id})


@resolver("Query", "contact")
async def contact(ctx, parent, id):
    return await crud.get(ctx, CONTACTS, id, CONTACTS_PATH, "crm_contacts")


@resolver("Query", "deals")
async def deals(ctx, parent, first, after=None, customer_id=None, stage=None):
    return await crud.connection(ctx, DEALS, DEALS_PATH, first=first, after=after, cache="crm_deals",
                                 filters={"customer_id": customer_id, "stage": stage})


@resolver("Query", "deal")
async def deal(ctx, parent, id):
    return await crud.get(ctx, DEALS, id, DEALS_PATH, "crm_deals")


@resolver("Customer", "owner")
async def customer_owner(ctx, customer):
    return await crud.related(ctx, USERS, customer.get("owner_id"))


@resolver("Customer", "contacts")
async def customer_contacts(ctx, customer, first, after=None):
    return await crud.connection(ctx, CONTACTS, CONTACTS_PATH, first=first, after=after, cache="crm_contacts",
                                 filters={"customer_id": customer["id"]})


@resolver("Customer", "deals")
async def customer_deals(ctx, customer, first, after=None):
    return await crud.connection(ctx, DEALS, DEALS_PATH, first=first, after=after, cache="crm_deals",
                                 filters={"customer_id": customer["id"]})


@resolver("Contact", "customer")
async def contact_customer(ctx, contact):
    return await crud.related(ctx, CUSTOMERS, contact.get("customer_id"))


@resolver("Deal", "customer")
async def deal_customer(ctx, deal):
    return await crud.related(ctx, CUSTOMERS, deal.get("customer_id"))


@resolver("Mutation", "createCustomer")
async def create_customer(ctx, parent, input):
    return await crud.create(ctx, CUSTOMERS, input, invalidates=("crm_customers",))


@resolver("Mutation", "updateCustomer")
async def update_customer(ctx, parent, id, input):
    return await crud.update(ctx, CUSTOMERS, id, input, invalidates=("crm_customers",))


@resolver("Mutation", "deleteCustomer")
async def delete_customer(ctx, parent, id):
    return await crud.delete(ctx, CUSTOMERS, id, invalidates=("crm_customers",))
