"""Finance: accounts, invoices (with their customer, batched) and payments."""

from handlers.crm.customers import CUSTOMERS
from handlers.finance.accounts import ACCOUNTS
from handlers.finance.invoices import INVOICES
from handlers.finance.payments import PAYMENTS
from runtime.graphql import crud, resolver

ACCOUNTS_PATH, INVOICES_PATH, PAYMENTS_PATH = ("/api/v1/finance/accounts", "/api/v1/finance/invoices",
                                               "/api/v1/finance/payments")


@resolver("Query", "accounts")
async def accounts(ctx, parent, first, after=None):
    return await crud.connection(ctx, ACCOUNTS, ACCOUNTS_PATH, first=first, after=after, cache="finance_accounts")


@resolver("Query", "account")
async def account(ctx, parent, id):
    return await crud.get(ctx, ACCOUNTS, id, ACCOUNTS_PATH, "finance_accounts")


@resolver("Query", "invoices")
async def invoices(ctx, parent, first, after=None, status=None, customer_id=None):
    return await crud.connection(ctx, INVOICES, INVOICES_PATH, first=first, after=after, cache="finance_invoices",
                                 filters={"status": status, "customer_id": customer_id})


@resolver("Query", "invoice")
async def invoice(ctx, parent, id):
    return await crud.get(ctx, INVOICES, id, INVOICES_PATH, "finance_invoices")


@resolver("Query", "payments")
async def payments(ctx, parent, first, after=None, invoice_id=None):
    return await crud.connection(ctx, PAYMENTS, PAYMENTS_PATH, first=first, after=after, cache="finance_payments",
                                 filters={"invoice_id": invoice_id})


@resolver("Query", "payment")
async def payment(ctx, parent, id):
    return await crud.get(ctx, PAYMENTS, id, PAYMENTS_PATH, "finance_payments")


@resolver("Invoice", "customer")
async def invoice_customer(ctx, invoice):
    return await crud.related(ctx, CUSTOMERS, invoice.get("customer_id"))


@resolver("Invoice", "payments")
async def invoice_payments(ctx, invoice, first, after=None):
    return await crud.connection(ctx, PAYMENTS, PAYMENTS_PATH, first=first, after=after, cache="finance_payments",
                                 filters={"invoice_id": invoice["id"]})


@resolver("Payment", "invoice")
async def payment_invoice(ctx, payment):
    return await crud.related(ctx, INVOICES, payment.get("invoice_id"))
