"""Contacts: the people at a customer."""

from dataclasses import replace

from proto.erp.crm.v1 import crm_pb2
from runtime.rest import Collection
from runtime.schema import EMAIL, text

CONTACTS = Collection(
    "crm",
    crm_pb2.Contact,
    fields={
        "customer_id": text(1, 64, doc="The customer this person works for"),
        "name": text(1, 200),
        "email": replace(EMAIL, required=False),
        "phone": text(0, 50, required=False),
    },
    filters={"customer_id": text(1, 64, required=False)},
)
