"""Where the Granian workers of one server write their metric files (prometheus-client's
multiprocess mode), chosen without importing prometheus-client: the server's process
(`runtime.serve`) must set it before anything imports the metrics module."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile

_BASE = os.path.join(tempfile.gettempdir(), f"erp-gateway-metrics-{os.getuid()}")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or None
    when it is gone; with the pid it names a process uniquely (pids are reused, this is not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()[19].decode()


def server_directory(server_pid: int) -> str | None:
    """A directory named after the server process and its start time, so one run never sees
    another's counts; directories of servers that are gone are removed."""
    started = _start_time(server_pid)
    if started is None:
        return None
    os.makedirs(_BASE, mode=0o700, exist_ok=True)
    for stale in glob.glob(os.path.join(_BASE, "*-*")):
        pid, _, when = os.path.basename(stale).partition("-")
        if pid.isdigit() and _start_time(int(pid)) != when:
            shutil.rmtree(stale, ignore_errors=True)
    path = os.path.join(_BASE, f"{server_pid}-{started}")
    os.makedirs(path, exist_ok=True)
    return path
