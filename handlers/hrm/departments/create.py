from handlers.hrm.departments import DEPARTMENTS
from runtime import endpoint


@endpoint("POST", "/api/v1/hrm/departments", permission="hrm.departments:create", invalidates=("hrm_departments",),
          body=DEPARTMENTS.create_body, status=201, response=DEPARTMENTS.message)
async def create_department(req, ctx):
    """Create a department; answers 201 with it and its Location."""
    return await DEPARTMENTS.create(ctx)
