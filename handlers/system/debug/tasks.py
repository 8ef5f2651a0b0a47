from runtime import endpoint
from runtime.observability import profiling


@endpoint("GET", "/debug/pprof/tasks", permission=profiling.PERMISSION, tags=["system"], response=profiling.TASKS,
          upstream=False, errors=profiling.OFF)
async def asyncio_tasks(req, ctx):
    """Every asyncio task of the worker serving this request, with where it waits."""
    profiling.require_enabled(ctx)
    return profiling.task_dump()
