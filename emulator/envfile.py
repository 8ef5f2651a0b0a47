"""The ERP_* environment `gw backends --env-file` hands to a separately started gateway."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def write_env_file(path: str | Path, env: dict[str, str]) -> None:
    """Atomically: a reader never sees half a file, so existing means complete."""
    tmp = Path(str(path) + ".tmp")
    tmp.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    tmp.replace(path)


def wait_for_env_file(path: str | Path, process: subprocess.Popen, timeout: float) -> dict[str, str]:
    """The environment once `process` (a `gw backends`) has written it; RuntimeError if it
    exits or runs out of time first."""
    path = Path(path)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("`gw backends` did not start; see its messages above")
        time.sleep(0.05)
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
