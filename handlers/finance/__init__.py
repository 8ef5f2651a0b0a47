"""Finance REST resources: one package per collection, one file per endpoint."""
from proto.erp.finance.v1 import finance_pb2_grpc
from runtime.domains import Domain

_TWO_MINUTES = {"ttl": "2m", "scope": "organization"}

DOMAIN = Domain("finance", finance_pb2_grpc.FinanceServiceStub, address="localhost:50054",
                cache_policies={"finance_accounts": _TWO_MINUTES, "finance_invoices": _TWO_MINUTES, "finance_payments": _TWO_MINUTES})
