from handlers.hrm.departments import DEPARTMENTS
from runtime import endpoint


@endpoint("DELETE", "/api/v1/hrm/departments/{id}", permission="hrm.departments:delete", invalidates=("hrm_departments",))
async def delete_department(req, ctx, id):
    """Delete a department; answers 200 with the envelope and null data."""
    return await DEPARTMENTS.delete(ctx, id)
