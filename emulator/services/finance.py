"""The finance backend: chart of accounts, invoices, payments.

Invoice line amounts and the invoice total are computed here, never trusted from the caller.
"""

import re
from datetime import date
from decimal import Decimal

from google.protobuf.message import Message

from emulator.services.crud import crud_server
from emulator.services.rpc import invalid
from emulator.services.server import ServiceServer
from emulator.services.store import Resource, Store, decimal, defaults
from proto.erp.common.v1.common_pb2 import Money
from proto.erp.finance.v1 import finance_pb2, finance_pb2_grpc
from runtime.timestamps import now

ACCOUNT_TYPES = frozenset({"asset", "liability", "equity", "revenue", "expense"})
INVOICE_STATUSES = frozenset({"draft", "sent", "paid", "overdue", "void"})
CENTS = Decimal("0.01")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _decimal(value: str, field: str) -> Decimal:
    number = decimal(value)
    if number is None:
        raise invalid(field, "must be a decimal string")
    return number


def _prepare_invoice(invoice: Message) -> None:
    defaults(status="draft")(invoice)
    if invoice.due_date:
        try:
            if not _ISO_DATE.fullmatch(invoice.due_date):
                raise ValueError
            date.fromisoformat(invoice.due_date)
        except ValueError:
            raise invalid("due_date", "must be a date as YYYY-MM-DD") from None
    if not invoice.lines:
        return
    currency, total = invoice.lines[0].unit_price.currency, Decimal(0)
    for i, line in enumerate(invoice.lines):
        if not line.HasField("unit_price"):
            raise invalid(f"lines[{i}].unit_price", "is required")
        if line.unit_price.currency != currency:
            raise invalid(f"lines[{i}].unit_price.currency", "must match the other lines")
        quantity = _decimal(line.quantity, f"lines[{i}].quantity")
        if quantity <= 0:
            raise invalid(f"lines[{i}].quantity", "must be greater than zero")
        price = _decimal(line.unit_price.amount, f"lines[{i}].unit_price.amount")
        amount = (quantity * price).quantize(CENTS)
        line.amount.CopyFrom(Money(currency=currency, amount=str(amount)))
        total += amount
    invoice.total.CopyFrom(Money(currency=currency, amount=str(total)))


def _prepare_payment(payment: Message) -> None:
    if not payment.HasField("paid_at"):
        payment.paid_at.CopyFrom(now())  # milliseconds, like every timestamp (runtime.timestamps)


def _payment_rules(store: Store, org: str, payment: Message) -> None:
    """A payment is of a positive amount, in the currency of the invoice it pays."""
    amount = decimal(payment.amount.amount)
    if amount is not None and amount <= 0:
        raise invalid("amount.amount", "must be greater than zero")
    invoice = store.get("Invoice", org, payment.invoice_id)  # the reference was checked just before
    if invoice.total.currency and payment.amount.currency != invoice.total.currency:
        raise invalid("amount.currency", f"must be the invoice's currency, {invoice.total.currency}")


RESOURCES = (
    Resource(finance_pb2.Account, "Accounts", required=("code", "name", "type"),
             unique=("code",), choices={"type": ACCOUNT_TYPES}),
    Resource(finance_pb2.Invoice, "Invoices", required=("customer_id", "number", "total"),
             unique=("number",), choices={"status": INVOICE_STATUSES},
             filters=("status", "customer_id"), prepare=_prepare_invoice,
             foreign={"customer_id": "Customer"}),
    Resource(finance_pb2.Payment, "Payments", required=("invoice_id", "amount"),
             refs={"invoice_id": "Invoice"}, filters=("invoice_id",),
             prepare=_prepare_payment, rules=_payment_rules),
)


def build(store: Store | None = None) -> ServiceServer:
    return crud_server("finance", finance_pb2, finance_pb2_grpc, "FinanceService",
                       store or Store(RESOURCES))
