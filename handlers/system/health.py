from runtime import endpoint


@endpoint("GET", "/health", auth=False, rate_limit=False, tags=["system"])
async def health(req, ctx):
    """Liveness: the process answers. Calls no dependency, so a backend outage never restarts us."""
    return {"status": "ok"}
