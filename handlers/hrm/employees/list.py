from handlers.hrm.employees import EMPLOYEES
from runtime import endpoint


@endpoint("GET", "/api/v1/hrm/employees", permission="hrm.employees:read", cache="hrm_employees",
          query=EMPLOYEES.query, response=EMPLOYEES.page)
async def list_employees(req, ctx):
    """List employees, a page at a time; filter by department_id."""
    return await EMPLOYEES.list(ctx)
