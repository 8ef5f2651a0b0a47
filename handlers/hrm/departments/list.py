from handlers.hrm.departments import DEPARTMENTS
from runtime import endpoint


@endpoint("GET", "/api/v1/hrm/departments", permission="hrm.departments:read", cache="hrm_departments",
          query=DEPARTMENTS.query, response=DEPARTMENTS.page)
async def list_departments(req, ctx):
    """List departments, a page at a time."""
    return await DEPARTMENTS.list(ctx)
