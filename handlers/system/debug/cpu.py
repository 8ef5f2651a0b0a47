from runtime import Reply, endpoint
from runtime.observability import profiling


@endpoint("GET", "/debug/pprof/profile", permission=profiling.PERMISSION, query=profiling.SECONDS_QUERY,
          tags=["system"], response=profiling.PROFILE, upstream=False, errors={**profiling.OFF, **profiling.BUSY})
async def cpu_profile(req, ctx):
    """CPU profile of the worker serving this request for `seconds` (pstats text, by cumulative time)."""
    profiling.require_enabled(ctx)
    text = await profiling.cpu_profile(profiling.requested_seconds(ctx))
    return Reply(text.encode(), media_type="text/plain; charset=utf-8")
