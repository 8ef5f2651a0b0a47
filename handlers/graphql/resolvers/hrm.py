"""HRM: employees (with their department and manager, batched) and departments."""

from handlers.hrm import departments, employees
from runtime.graphql.crud import Fields, Resource, children, reference, root

EMPLOYEES = Resource(employees.EMPLOYEES, "/api/v1/hrm/employees", "hrm_employees")
DEPARTMENTS = Resource(departments.DEPARTMENTS, "/api/v1/hrm/departments", "hrm_departments")

FIELDS = Fields(
    root(EMPLOYEES, one="employee", many="employees", writes="Employee"),
    root(DEPARTMENTS, one="department", many="departments"),
    {
        ("Employee", "department"): reference(DEPARTMENTS, "department_id"),
        ("Employee", "manager"): reference(EMPLOYEES, "manager_id"),
        ("Department", "head"): reference(EMPLOYEES, "head_id"),
        ("Department", "employees"): children(EMPLOYEES, "department_id"),
    },
)
