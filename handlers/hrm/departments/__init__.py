"""Departments: named groups of employees with a head."""

from proto.erp.hrm.v1 import hrm_pb2
from runtime.rest import Collection
from runtime.schema import text

DEPARTMENTS = Collection(
    "hrm",
    hrm_pb2.Department,
    fields={
        "name": text(1, 200, doc="Unique within the organization"),
        "head_id": text(1, 64, required=False, doc="Employee id of the head of department"),
    },
)
