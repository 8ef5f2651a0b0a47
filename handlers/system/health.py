from runtime import endpoint
from runtime.responses import Record

HEALTH = Record("Health", {"status": {"const": "ok"}}, doc="The process answers")


@endpoint("GET", "/health", auth=False, rate_limit=False, tags=["system"], response=HEALTH, upstream=False)
async def health(req, ctx):
    """Liveness: the process answers. Calls no dependency, so a backend outage never restarts us."""
    return {"status": "ok"}
