from handlers.hrm.employees import EMPLOYEES
from runtime import endpoint


@endpoint("POST", "/api/v1/hrm/employees", permission="hrm.employees:create", invalidates=("hrm_employees",),
          body=EMPLOYEES.create_body, status=201, response=EMPLOYEES.message)
async def create_employee(req, ctx):
    """Create an employee; answers 201 with it and its Location."""
    return await EMPLOYEES.create(ctx)
