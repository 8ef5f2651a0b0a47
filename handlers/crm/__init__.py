"""CRM REST resources: one package per collection, one file per endpoint."""
from proto.erp.crm.v1 import crm_pb2_grpc
from runtime.domains import Domain

_TWO_MINUTES = {"ttl": "2m", "scope": "organization"}

DOMAIN = Domain("crm", crm_pb2_grpc.CrmServiceStub, address="localhost:50052",
                cache_policies={"crm_customers": _TWO_MINUTES, "crm_contacts": _TWO_MINUTES, "crm_deals": _TWO_MINUTES})
