"""Customers: the CRM's accounts. What a client may write, and what a list filters on."""

from dataclasses import replace

from proto.erp.crm.v1 import crm_pb2
from runtime.rest import Collection
from runtime.schema import EMAIL, Field, text

STATUSES = ("lead", "prospect", "active", "inactive")  # the contract's Customer.status values

CUSTOMERS = Collection(
    "crm",
    crm_pb2.Customer,
    fields={
        "name": text(1, 200),
        "email": replace(EMAIL, required=False),
        "phone": text(0, 50, required=False),
        "status": Field(str, required=False, choices=STATUSES, doc="New customers start as lead"),
        "owner_id": text(1, 64, required=False, doc="User id of the account owner"),
    },
    filters={
        "status": Field(str, required=False, choices=STATUSES),
        "q": text(1, 200, required=False, doc="Case-insensitive text in the name or email"),
    },
)
