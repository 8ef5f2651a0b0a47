"""The CRM backend: customers, their contacts, and deals."""

from google.protobuf.message import Message

from emulator.services.crud import crud_server
from emulator.services.rpc import invalid
from emulator.services.server import ServiceServer
from emulator.services.store import Resource, Store, decimal, defaults
from proto.erp.crm.v1 import crm_pb2, crm_pb2_grpc

CUSTOMER_STATUSES = frozenset({"lead", "prospect", "active", "inactive"})
DEAL_STAGES = frozenset({"qualification", "proposal", "negotiation", "won", "lost"})

def _deal_rules(store: Store, org: str, deal: Message) -> None:
    amount = decimal(deal.amount.amount)
    if amount is not None and amount < 0:
        raise invalid("amount.amount", "must not be negative")


RESOURCES = (
    Resource(crm_pb2.Customer, "Customers", required=("name",),
             choices={"status": CUSTOMER_STATUSES}, filters=("status",),
             search=("name", "email"), prepare=defaults(status="lead"),
             foreign={"owner_id": "User"}),
    Resource(crm_pb2.Contact, "Contacts", required=("customer_id", "name"),
             refs={"customer_id": "Customer"}, filters=("customer_id",)),
    Resource(crm_pb2.Deal, "Deals", required=("customer_id", "title", "amount"),
             choices={"stage": DEAL_STAGES}, refs={"customer_id": "Customer"},
             filters=("customer_id", "stage"), prepare=defaults(stage="qualification"),
             rules=_deal_rules),
)


def build(store: Store | None = None) -> ServiceServer:
    return crud_server("crm", crm_pb2, crm_pb2_grpc, "CrmService", store or Store(RESOURCES))
