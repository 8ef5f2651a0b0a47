"""Employees: the people of the organization, in departments, with managers."""

from dataclasses import replace

from proto.erp.hrm.v1 import hrm_pb2
from runtime.rest import Collection
from runtime.schema import EMAIL, text

EMPLOYEES = Collection(
    "hrm",
    hrm_pb2.Employee,
    fields={
        "first_name": text(1, 100),
        "last_name": text(1, 100),
        "email": replace(EMAIL, required=False, doc="Unique within the organization"),
        "user_id": text(1, 64, required=False, doc="The user this employee signs in as"),
        "department_id": text(1, 64, required=False),
        "manager_id": text(1, 64, required=False, doc="Employee id of the manager"),
        "title": text(0, 200, required=False),
    },
    filters={"department_id": text(1, 64, required=False)},
)
