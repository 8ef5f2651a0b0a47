"""The HRM backend: departments and the employees in them."""

from google.protobuf.message import Message

from emulator.services.crud import crud_server
from emulator.services.rpc import invalid
from emulator.services.server import ServiceServer
from emulator.services.store import Resource, Store
from proto.erp.hrm.v1 import hrm_pb2, hrm_pb2_grpc

def _employee_rules(store: Store, org: str, employee: Message) -> None:
    if employee.manager_id and employee.manager_id == employee.id:
        raise invalid("manager_id", "cannot be the employee themself")


RESOURCES = (
    Resource(hrm_pb2.Employee, "Employees", required=("first_name", "last_name"),
             unique=("email", "user_id"),
             refs={"department_id": "Department", "manager_id": "Employee"},
             foreign={"user_id": "User"}, rules=_employee_rules,
             filters=("department_id",)),
    Resource(hrm_pb2.Department, "Departments", required=("name",), unique=("name",),
             refs={"head_id": "Employee"}),
)


def build(store: Store | None = None) -> ServiceServer:
    return crud_server("hrm", hrm_pb2, hrm_pb2_grpc, "HrmService", store or Store(RESOURCES))
