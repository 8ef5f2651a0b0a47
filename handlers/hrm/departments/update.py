from handlers.hrm.departments import DEPARTMENTS
from runtime import endpoint


@endpoint("PATCH", "/api/v1/hrm/departments/{id}", permission="hrm.departments:update", invalidates=("hrm_departments",),
          body=DEPARTMENTS.update_body, response=DEPARTMENTS.message)
async def update_department(req, ctx, id):
    """Change some fields of a department; the fields sent are the update mask, the rest keep their values."""
    return await DEPARTMENTS.update(ctx, id)
