"""Child processes that never outlive `gw`: even a SIGKILLed parent takes them along."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen:
    return subprocess.Popen(args, preexec_fn=_die_with_parent, **kwargs)


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
