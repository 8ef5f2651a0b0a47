from handlers.hrm.employees import EMPLOYEES
from runtime import endpoint


@endpoint("GET", "/api/v1/hrm/employees/{id}", permission="hrm.employees:read", cache="hrm_employees",
          etag=True, response=EMPLOYEES.message)
async def get_employee(req, ctx, id):
    """One employee; send its ETag back in If-None-Match to get 304 while it is unchanged."""
    return await EMPLOYEES.get(ctx, id)
