"""The finance backend: chart of accounts, invoices, payments.

Invoice line amounts and the invoice total are computed here, never trusted from the caller.
"""

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from google.protobuf.message import Message

from emulator.services.crud import crud_server
from emulator.services.rpc import invalid
from emulator.services.server import ServiceServer
from emulator.services.store import Resource, Store, defaults
from proto.erp.common.v1.common_pb2 import Money
from proto.erp.finance.v1 import finance_pb2, finance_pb2_grpc
from runtime.timestamps import now

ACCOUNT_TYPES = frozenset({"asset", "liability", "equity", "revenue", "expense"})
INVOICE_STATUSES = frozenset({"draft", "sent", "paid", "overdue", "void"})
CENTS = Decimal("0.01")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _decimal(value: str, field: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise invalid(field, "must be a decimal string")
    return number


def _prepare_invoice(invoice: Message) -> None:
    defaults(status="draft")(invoice)
    if invoice.due_date:
        try:
            if not _ISO_DATE.match(invoice.due_date):
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
        price = _decimal(line.unit_price.amount, f"lines[{i}].unit_price.amount")
        amount = (quantity * price).quantize(CENTS)
        line.amount.CopyFrom(Money(currency=currency, amount=str(amount)))
        total += amount
    invoice.total.CopyFrom(Money(currency=currency, amount=str(total)))


def _prepare_payment(payment: Message) -> None:
    if not payment.HasField("paid_at"):
        payment.paid_at.CopyFrom(now())  # milliseconds, like every timestamp (runtime.timestamps)


RESOURCES = (
    Resource(finance_pb2.Account, "Accounts", required=("code", "name", "type"),
             unique=("code",), choices={"type": ACCOUNT_TYPES}),
    Resource(finance_pb2.Invoice, "Invoices", required=("customer_id", "number", "total"),
             unique=("number",), choices={"status": INVOICE_STATUSES},
             filters=("status", "customer_id"), prepare=_prepare_invoice),
    Resource(finance_pb2.Payment, "Payments", required=("invoice_id", "amount"),
             refs={"invoice_id": "Invoice"}, filters=("invoice_id",),
             prepare=_prepare_payment),
)


def build(store: Store | None = None) -> ServiceServer:
    return crud_server("finance", finance_pb2, finance_pb2_grpc, "FinanceService",
                       store or Store(RESOURCES))
