"""HRM REST resources: one package per collection, one file per endpoint."""
from proto.erp.hrm.v1 import hrm_pb2_grpc
from runtime.domains import Domain

_TWO_MINUTES = {"ttl": "2m", "scope": "organization"}

DOMAIN = Domain("hrm", hrm_pb2_grpc.HrmServiceStub, address="localhost:50053",
                cache_policies={"hrm_employees": _TWO_MINUTES, "hrm_departments": _TWO_MINUTES})
