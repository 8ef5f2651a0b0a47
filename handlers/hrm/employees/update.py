from handlers.hrm.employees import EMPLOYEES
from runtime import endpoint


@endpoint("PATCH", "/api/v1/hrm/employees/{id}", permission="hrm.employees:update", invalidates=("hrm_employees",),
          body=EMPLOYEES.update_body, response=EMPLOYEES.message)
async def update_employee(req, ctx, id):
    """Change some fields of an employee; the fields sent are the update mask, the rest keep their values."""
    return await EMPLOYEES.update(ctx, id)
