import asyncio

from runtime import Reply, endpoint
from runtime.errors import NotFound
from runtime.observability import metrics
from runtime.responses import Document

EXPOSITION = Document({"type": "string"}, doc="Prometheus text exposition format 0.0.4", media_types=("text/plain",))


@endpoint("GET", "/metrics", auth=False, rate_limit=False, tags=["system"], response=EXPOSITION, upstream=False,
          errors={404: "Metrics are switched off (observability.metrics.enabled)"})
async def prometheus_metrics(req, ctx):
    """Prometheus metrics in the text exposition format, summed over every worker of this instance."""
    if not ctx.config.observability.metrics.enabled:
        raise NotFound("Metrics are switched off (observability.metrics.enabled)")
    return Reply(await asyncio.to_thread(metrics.render), media_type=metrics.CONTENT_TYPE)
