"""Invoices: what customers owe. Line amounts and the total are computed by the service."""

from dataclasses import replace

from proto.erp.finance.v1 import finance_pb2
from runtime.rest import MONEY, Collection
from runtime.schema import Body, Field, text

STATUSES = ("draft", "sent", "paid", "overdue", "void")  # the contract's Invoice.status values

LINE = Field(dict, properties=Body("InvoiceLine", {
    "description": text(1, 500),
    "quantity": Field(str, format="decimal", doc="Decimal string, e.g. \"2.5\""),
    "unit_price": MONEY,
}))

INVOICES = Collection(
    "finance",
    finance_pb2.Invoice,
    fields={
        "customer_id": text(1, 64, doc="CRM customer id"),
        "number": text(1, 64, doc="Unique within the organization, e.g. INV-2025-0001"),
        "status": Field(str, required=False, choices=STATUSES, doc="New invoices start as draft"),
        "due_date": Field(str, required=False, format="date"),
        "lines": Field(list, required=False, min_length=1, max_length=100, items=LINE,
                       doc="When given, the total is their sum"),
        "total": replace(MONEY, required=False, doc="Only for an invoice without lines"),
    },
    filters={"status": Field(str, required=False, choices=STATUSES), "customer_id": text(1, 64, required=False)},
)
