import asyncio

from runtime import Reply, endpoint
from runtime.errors import NotFound
from runtime.observability import metrics
from runtime.observability.metrics_access import check_metrics_access
from runtime.responses import Document

EXPOSITION = Document({"type": "string"}, doc="Prometheus text exposition format 0.0.4", media_types=("text/plain",))


@endpoint("GET", "/metrics", auth=False, rate_limit=False, tags=["system"], response=EXPOSITION, upstream=False,
          errors={401: "observability.metrics.token is set and the request does not carry it as a bearer token",
                  403: "The client's address is not in observability.metrics.allowed_networks",
                  404: "Metrics are switched off (observability.metrics.enabled)"})
async def prometheus_metrics(req, ctx):
    """Prometheus metrics in the text exposition format, summed over every worker of this instance.

    Behind a bearer token and/or a list of client networks when configured (observability.metrics)."""
    settings = ctx.config.observability.metrics
    if not settings.enabled:
        raise NotFound("Metrics are switched off (observability.metrics.enabled)")
    check_metrics_access(settings, ctx.client_ip, req.get_header("Authorization"))
    return Reply(await asyncio.to_thread(metrics.render), media_type=metrics.CONTENT_TYPE)
