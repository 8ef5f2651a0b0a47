"""Close every WebSocket with 1001 when the worker is told to stop, before Granian does.

Granian's worker turns SIGTERM/SIGINT into its own shutdown signal, which drops open
WebSockets at once, without a close frame, and only then runs the ASGI lifespan shutdown:
too late for a 1001 that tells clients "going away: reconnect elsewhere and resume". So the
lifespan start-up puts a handler of ours in front: on the signal it closes the sockets with
1001 (bounded by `server.shutdown_timeout`), then hands over to Granian's shutdown.

Granian offers no hook for this; its shutdown signal object is a local of the function that
runs the worker (granian/server/mp.py), which is still on the stack while the lifespan
starts, so we find it there. If a Granian version moves it, nothing is installed and a
warning is logged (sockets then close without 1001, and clients still resume on reconnect);
tests/integration/test_realtime.py fails on that, so an upgrade cannot hide it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any, Awaitable, Callable

log = logging.getLogger("gateway.realtime")


def _granian_shutdown_signal() -> Any:
    frame: Any = sys._getframe()
    while frame is not None:
        candidate = frame.f_locals.get("shutdown_event")
        if candidate is not None and type(candidate).__name__ == "WorkerSignal" and hasattr(candidate, "set"):
            return candidate
        frame = frame.f_back
    return None


def install(close_all: Callable[[], Awaitable[None]]) -> bool:
    """Call from the lifespan start-up of a Granian worker; True when installed."""
    granian_signal = _granian_shutdown_signal()
    if granian_signal is None:
        if "granian" in sys.modules:
            log.warning("WebSockets will close without 1001 on shutdown: Granian's shutdown signal was not found")
        return False
    loop = asyncio.get_running_loop()
    state: dict[str, Any] = {"stopping": False}

    async def stop() -> None:
        try:
            await close_all()
        except Exception:
            log.exception("closing WebSockets on shutdown failed")
        finally:
            granian_signal.set()

    def on_signal() -> None:
        if state["stopping"]:
            granian_signal.set()  # a second signal: stop now
            return
        state["stopping"] = True
        state["task"] = loop.create_task(stop())  # kept: an unreferenced task may be collected

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return True
