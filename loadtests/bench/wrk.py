"""One wrk run against one URL, summarised by report.lua."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

SCRIPT = Path(__file__).with_name("report.lua")
INSTALL_HINT = "sudo apt-get install -y wrk"


@dataclass(frozen=True)
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int  # connect/read/write errors and timeouts: requests that got no answer at all
    cpu_us: float = 0.0  # the server's CPU per request, when the bench could read it (Bench.measure)

    def as_dict(self) -> dict:
        return asdict(self)


def find_wrk() -> str | None:
    return shutil.which("wrk")


def run(url: str, *, duration: float, connections: int, threads: int = 1, method: str = "GET",
        body: str | None = None, authorization: str | None = None) -> Run:
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_BODY": body or "", "BENCH_AUTHORIZATION": authorization or ""}
    command = [find_wrk() or "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "-s", str(SCRIPT), url]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    r = orjson.loads(line[len("BENCH "):])
    return Run(
        rps=r["requests"] / (r["duration_us"] / 1e6),
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        requests=r["requests"],
        non_2xx=r["non_2xx"],
        errors=r["socket_errors"] + r["timeouts"],
    )
