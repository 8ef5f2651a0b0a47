from runtime import endpoint
from runtime.observability import profiling


@endpoint("GET", "/debug/pprof/heap", permission=profiling.PERMISSION, query=profiling.SECONDS_QUERY,
          tags=["system"], response=profiling.HEAP, upstream=False, errors={**profiling.OFF, **profiling.BUSY})
async def memory_allocations(req, ctx):
    """Top allocation sites of memory allocated during `seconds` and still live, in this worker."""
    profiling.require_enabled(ctx)
    return await profiling.memory_top(profiling.requested_seconds(ctx))
