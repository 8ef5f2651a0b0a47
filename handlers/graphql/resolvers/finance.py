"""Finance: accounts, invoices (with their customer, batched) and payments."""

from handlers.finance import accounts, invoices, payments
from handlers.graphql.resolvers.crm import CUSTOMERS
from runtime.graphql.crud import Fields, Resource, children, reference, root

ACCOUNTS = Resource(accounts.ACCOUNTS, "/api/v1/finance/accounts", "finance_accounts")
INVOICES = Resource(invoices.INVOICES, "/api/v1/finance/invoices", "finance_invoices")
PAYMENTS = Resource(payments.PAYMENTS, "/api/v1/finance/payments", "finance_payments")

FIELDS = Fields(
    root(ACCOUNTS, one="account", many="accounts"),
    root(INVOICES, one="invoice", many="invoices"),
    root(PAYMENTS, one="payment", many="payments"),
    {
        ("Invoice", "customer"): reference(CUSTOMERS, "customer_id"),
        ("Invoice", "payments"): children(PAYMENTS, "invoice_id"),
        ("Payment", "invoice"): reference(INVOICES, "invoice_id"),
    },
)
