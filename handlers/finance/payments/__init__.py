"""Payments against invoices.

Immutable through the gateway: a recorded payment is a ledger fact, so there is no PATCH; a
payment recorded in error is deleted (finance.payments:delete) and recorded again.
"""

from proto.erp.finance.v1 import finance_pb2
from runtime.rest import MONEY, Collection
from runtime.schema import text

PAYMENTS = Collection(
    "finance",
    finance_pb2.Payment,
    fields={"invoice_id": text(1, 64), "amount": MONEY},  # paid_at: the service records the time
    filters={"invoice_id": text(1, 64, required=False)},
)
