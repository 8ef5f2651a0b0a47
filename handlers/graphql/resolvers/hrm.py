"""HRM: employees (with their department and manager, batched) and departments."""

from handlers.hrm.departments import DEPARTMENTS
from handlers.hrm.employees import EMPLOYEES
from runtime.graphql import crud, resolver

EMPLOYEES_PATH, DEPARTMENTS_PATH = "/api/v1/hrm/employees", "/api/v1/hrm/departments"
EMPLOYEES_CACHE, DEPARTMENTS_CACHE = "hrm_employees", "hrm_departments"


@resolver("Query", "employees")
async def employees(ctx, parent, first, after=None, department_id=None):
    return await crud.connection(ctx, EMPLOYEES, EMPLOYEES_PATH, first=first, after=after, cache=EMPLOYEES_CACHE,
                                 filters={"department_id": department_id})


@resolver("Query", "employee")
async def employee(ctx, parent, id):
    return await crud.get(ctx, EMPLOYEES, id, EMPLOYEES_PATH, EMPLOYEES_CACHE)


@resolver("Query", "departments")
async def departments(ctx, parent, first, after=None):
    return await crud.connection(ctx, DEPARTMENTS, DEPARTMENTS_PATH, first=first, after=after, cache=DEPARTMENTS_CACHE)


@resolver("Query", "department")
async def department(ctx, parent, id):
    return await crud.get(ctx, DEPARTMENTS, id, DEPARTMENTS_PATH, DEPARTMENTS_CACHE)


@resolver("Employee", "department")
async def employee_department(ctx, employee):
    return await crud.related(ctx, DEPARTMENTS, employee.get("department_id"))


@resolver("Employee", "manager")
async def employee_manager(ctx, employee):
    return await crud.related(ctx, EMPLOYEES, employee.get("manager_id"))


@resolver("Department", "head")
async def department_head(ctx, department):
    return await crud.related(ctx, EMPLOYEES, department.get("head_id"))


@resolver("Department", "employees")
async def department_employees(ctx, department, first, after=None):
    return await crud.connection(ctx, EMPLOYEES, EMPLOYEES_PATH, first=first, after=after, cache=EMPLOYEES_CACHE,
                                 filters={"department_id": department["id"]})


@resolver("Mutation", "createEmployee")
async def create_employee(ctx, parent, input):
    return await crud.create(ctx, EMPLOYEES, input, invalidates=(EMPLOYEES_CACHE,))


@resolver("Mutation", "updateEmployee")
async def update_employee(ctx, parent, id, input):
    return await crud.update(ctx, EMPLOYEES, id, input, invalidates=(EMPLOYEES_CACHE,))


@resolver("Mutation", "deleteEmployee")
async def delete_employee(ctx, parent, id):
    return await crud.delete(ctx, EMPLOYEES, id, invalidates=(EMPLOYEES_CACHE,))
