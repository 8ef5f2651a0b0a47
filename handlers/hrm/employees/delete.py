from handlers.hrm.employees import EMPLOYEES
from runtime import endpoint


@endpoint("DELETE", "/api/v1/hrm/employees/{id}", permission="hrm.employees:delete", invalidates=("hrm_employees",))
async def delete_employee(req, ctx, id):
    """Delete an employee; answers 200 with the envelope and null data."""
    return await EMPLOYEES.delete(ctx, id)
