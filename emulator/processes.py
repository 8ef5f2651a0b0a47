"""Child processes that never outlive `gw`: even a SIGKILLed parent takes them along."""

from __future__ import annotations

import ctypes
import os
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


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (Granian's workers), from /proc; [] where there is no /proc."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except OSError:
        return []


def stop(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM, a grace period to drain, then SIGKILL; and then any child the process left.

    Granian 2.8 workers sometimes outlive their master's SIGTERM by the whole
    --workers-kill-timeout (seen with a bare Falcon app too); a master killed before that
    leaves them orphaned, holding the port and answering. So the workers are collected first
    and killed after the master is gone."""
    if process is None or process.poll() is not None:
        return
    children = _children(process.pid)
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for child in children + _children(process.pid):
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it exited with its master, as it should
