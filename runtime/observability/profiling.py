"""On-demand profiling of the worker that serves the request (the seed's /debug/pprof).

- CPU: cProfile for N seconds. The profiler hooks the thread that enables it, and every
  coroutine of the worker runs on the event loop's thread, so whatever the worker does in
  those seconds (every request, the background tasks) is in the profile.
- Tasks: every asyncio task of the worker, with its coroutine's current stack.
- Memory: tracemalloc for N seconds, then the top allocation sites of what is still live.

One profile at a time per worker (a second one answers 409): two would measure each other.
The routes are off unless `observability.profiling.enabled`, and need `system.debug:read`.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import tracemalloc
from typing import Any, Iterator

from runtime.errors import Conflict, NotFound, ValidationFailed
from runtime.responses import Document, Record
from runtime.schema import Body, Field

_busy = False


@contextlib.contextmanager
def _exclusive() -> Iterator[None]:
    global _busy
    if _busy:
        raise Conflict("A profile of this worker is already running; try again when it ends")
    _busy = True
    try:
        yield
    finally:
        _busy = False


async def cpu_profile(seconds: float, limit: int = 60, sort: str = "cumulative") -> str:
    """pstats text of what this worker ran during `seconds`, top `limit` functions."""
    with _exclusive():
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            await asyncio.sleep(seconds)
        finally:
            profiler.disable()
    out = io.StringIO()
    out.write(f"worker pid {os.getpid()}, {seconds:g}s of CPU profile\n")
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(sort).print_stats(limit)
    return out.getvalue()


def _await_chain(coro: Any, limit: int) -> list[str]:
    """Where a suspended coroutine waits: its frame, then the frame of what it awaits, and so
    on down. (Task.get_stack shows only the outermost frame of a suspended coroutine.)"""
    stack: list[str] = []
    while coro is not None and len(stack) < limit:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            stack.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return stack


def task_dump(frames: int = 30) -> list[dict[str, Any]]:
    """Every asyncio task of this worker: name, state, coroutine and where it waits."""
    current = asyncio.current_task()
    tasks = []
    for task in asyncio.all_tasks():
        stack = _await_chain(task.get_coro(), frames)
        tasks.append({
            "name": task.get_name(),
            "coroutine": getattr(task.get_coro(), "__qualname__", repr(task.get_coro())),
            "done": task.done(),
            "cancelling": task.cancelling() if hasattr(task, "cancelling") else 0,
            "current": task is current,
            "stack": stack,
        })
    return sorted(tasks, key=lambda t: t["name"])


async def memory_top(seconds: float, limit: int = 25) -> dict[str, Any]:
    """The top `limit` sites (file:line) of memory allocated during `seconds` and still live."""
    with _exclusive():
        started_here = not tracemalloc.is_tracing()
        if started_here:
            tracemalloc.start(10)
        try:
            await asyncio.sleep(seconds)
            snapshot = tracemalloc.take_snapshot()
            traced, peak = tracemalloc.get_traced_memory()
        finally:
            if started_here:
                tracemalloc.stop()
    snapshot = snapshot.filter_traces((tracemalloc.Filter(False, tracemalloc.__file__),))
    top = snapshot.statistics("lineno")[:limit]
    return {
        "pid": os.getpid(),
        "seconds": seconds,
        "traced_bytes": traced,
        "peak_bytes": peak,
        "top": [{"site": f"{s.traceback[0].filename}:{s.traceback[0].lineno}", "bytes": s.size, "count": s.count}
                for s in top],
    }


# What the /debug/pprof handlers share.
PERMISSION = "system.debug:read"
OFF = {404: "Profiling is switched off (observability.profiling.enabled)"}
BUSY = {409: "A profile of this worker is already running"}
PROFILE = Document({"type": "string"}, doc="pstats text, by cumulative time", media_types=("text/plain",))
TASKS = {"type": "array", "items": {"type": "object", "properties": {
    "name": {"type": "string"}, "coroutine": {"type": "string"}, "done": {"type": "boolean"},
    "cancelling": {"type": "integer"}, "current": {"type": "boolean"},
    "stack": {"type": "array", "items": {"type": "string"}, "description": "file:line in function, outermost first"},
}, "required": ["name", "coroutine", "done", "cancelling", "current", "stack"]}}
HEAP = Record("HeapReport", {
    "pid": {"type": "integer"}, "seconds": {"type": "integer"},
    "traced_bytes": {"type": "integer"}, "peak_bytes": {"type": "integer"},
    "top": {"type": "array", "items": {"type": "object", "properties": {
        "site": {"type": "string"}, "bytes": {"type": "integer"}, "count": {"type": "integer"},
    }, "required": ["site", "bytes", "count"]}},
}, doc="Top allocation sites of memory allocated while tracing and still live")
SECONDS_QUERY = Body("ProfileQuery", {
    "seconds": Field(int, required=False, default=5, minimum=1, maximum=3600, doc="How long to profile"),
})


def require_enabled(ctx: Any) -> None:
    if not ctx.config.observability.profiling.enabled:
        raise NotFound("Profiling is switched off (observability.profiling.enabled)")


def requested_seconds(ctx: Any) -> int:
    """`seconds` from the query, within `observability.profiling.max_seconds`."""
    value, most = ctx.query["seconds"], ctx.config.observability.profiling.max_seconds
    if value > most:
        raise ValidationFailed(errors={"seconds": [f"must be at most {most:g}"]})
    return value
