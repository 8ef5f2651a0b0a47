"""Child processes that never outlive `gw`: even a SIGKILLed parent takes them along."""

from __future__ import annotations

import ctypes
import shutil
import signal
import subprocess
import sys
from typing import Any, Callable

_PR_SET_PDEATHSIG = 1

# Nothing of ours may run in the child between fork and exec: the parent has gRPC and
# event-loop threads, and a lock one of them held at fork time (the dynamic loader's, say)
# would deadlock the child before exec. util-linux's setpriv sets the parent-death signal
# and execs, no Python involved; without it, prctl is resolved here, in the parent, so the
# child only makes the one call.
_SETPRIV = shutil.which("setpriv")
_prctl: Callable[..., int] | None = None
if sys.platform.startswith("linux") and _SETPRIV is None:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen:
    """Popen whose child gets SIGTERM when the thread that spawned it dies (armed just
    before exec: a parent killed within microseconds of spawning is not noticed)."""
    if _SETPRIV is not None:
        return subprocess.Popen([_SETPRIV, "--pdeathsig", "TERM", "--", *args], **kwargs)
    return subprocess.Popen(args, preexec_fn=_die_with_parent if _prctl else None, **kwargs)


def stop(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM, a grace period to drain, then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
