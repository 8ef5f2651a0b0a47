"""Deals: sales opportunities with a customer, moving through stages."""

from proto.erp.crm.v1 import crm_pb2
from runtime.rest import MONEY, Collection
from runtime.schema import Field, text

STAGES = ("qualification", "proposal", "negotiation", "won", "lost")  # the contract's Deal.stage values

DEALS = Collection(
    "crm",
    crm_pb2.Deal,
    fields={
        "customer_id": text(1, 64),
        "title": text(1, 200),
        "amount": MONEY,
        "stage": Field(str, required=False, choices=STAGES, doc="New deals start in qualification"),
    },
    filters={"customer_id": text(1, 64, required=False), "stage": Field(str, required=False, choices=STAGES)},
)
