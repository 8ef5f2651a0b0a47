from handlers.hrm.departments import DEPARTMENTS
from runtime import endpoint


@endpoint("GET", "/api/v1/hrm/departments/{id}", permission="hrm.departments:read", cache="hrm_departments",
          etag=True, response=DEPARTMENTS.message)
async def get_department(req, ctx, id):
    """One department; send its ETag back in If-None-Match to get 304 while it is unchanged."""
    return await DEPARTMENTS.get(ctx, id)
