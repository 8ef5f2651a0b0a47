from runtime import Reply, endpoint
from runtime.errors import BackendUnavailable
from runtime.readiness import READINESS, check_dependencies


@endpoint("GET", "/ready", auth=False, rate_limit=False, tags=["system"], response=READINESS, upstream=False,
          errors={503: ("Not ready: a required dependency is down; `data` is the report", READINESS)})
async def ready(req, ctx):
    """Readiness: each dependency with its status and latency; 503 while a required one is down."""
    report = await check_dependencies(ctx.resources)
    if report["status"] == "unavailable":
        raise BackendUnavailable("Not ready: a required dependency is down", data=report)
    return Reply(report, message="Ready" if report["status"] == "ready" else "Degraded")
