"""CRM: customers, their contacts and deals."""

from handlers.auth.users import USERS as USER_COLLECTION
from handlers.crm import contacts, customers, deals
from runtime.graphql.crud import Fields, Resource, children, reference, root

CUSTOMERS = Resource(customers.CUSTOMERS, "/api/v1/crm/customers", "crm_customers")
CONTACTS = Resource(contacts.CONTACTS, "/api/v1/crm/contacts", "crm_contacts")
DEALS = Resource(deals.DEALS, "/api/v1/crm/deals", "crm_deals")
USERS = Resource(USER_COLLECTION, "/api/v1/auth/users")

FIELDS = Fields(
    root(CUSTOMERS, one="customer", many="customers", writes="Customer"),
    root(CONTACTS, one="contact", many="contacts"),
    root(DEALS, one="deal", many="deals"),
    {
        ("Customer", "owner"): reference(USERS, "owner_id"),
        ("Customer", "contacts"): children(CONTACTS, "customer_id"),
        ("Customer", "deals"): children(DEALS, "customer_id"),
        ("Contact", "customer"): reference(CUSTOMERS, "customer_id"),
        ("Deal", "customer"): reference(CUSTOMERS, "customer_id"),
    },
)
