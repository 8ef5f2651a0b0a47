from runtime import Reply, endpoint
from runtime.readiness import check_dependencies


@endpoint("GET", "/ready", auth=False, rate_limit=False, tags=["system"])
async def ready(req, ctx):
    """Readiness: each dependency with its status and latency; 503 while a required one is down."""
    report = await check_dependencies(ctx.resources)
    if report["status"] == "unavailable":
        return Reply(report, message="Not ready", status=503)
    return Reply(report, message="Ready" if report["status"] == "ready" else "Degraded")
