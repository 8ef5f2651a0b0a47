"""Helpers for tests that start processes."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import httpx

from emulator.cli import granian_command
from emulator.ports import free_port, wait_for_http
from emulator.processes import spawn, stop
from emulator.services.seed import DEMO_PASSWORD  # noqa: F401  (re-exported for tests)
from runtime.config import load_config, without_configuration


GW = [sys.executable, "-m", "emulator.cli"]  # the `gw` command of this interpreter


def clean_env(**extra: str) -> dict[str, str]:
    """This environment minus any gateway configuration, plus `extra`."""
    return {**without_configuration(os.environ), **extra}


def granian_env(stack_env: dict[str, str], **extra: str) -> dict[str, str]:
    env = clean_env(**stack_env)
    env.setdefault("ERP_LOGGING_LEVEL", "warning")
    # Every test calls from 127.0.0.1 and signs in as the same few users: budgets no test
    # exhausts by accident (tests/integration/test_rate_limits.py sets its own).
    for policy in ("USER", "ANONYMOUS", "LOGIN", "SERVICE", "REGISTER", "REGISTER_DOMAIN"):
        env.setdefault(f"ERP_RATE_LIMITS_POLICIES_{policy}_LIMIT", "1000000")
    # Tests send bursts of concurrent requests from one address; tests/integration/test_slow_clients.py
    # sets the cap it tests.
    env.setdefault("ERP_LIMITS_MAX_IN_FLIGHT_PER_ADDRESS", "100000")
    env.update(extra)
    return env


def start_gateway(
    env: dict[str, str], workers: int = 1, timeout: float = 30, tls: ssl.SSLContext | None = None, **popen: Any
) -> tuple[subprocess.Popen, str]:
    """The gateway under Granian on a free port, once it answers /health; `popen` goes to
    Popen (e.g. stdout= to capture its logs). Granian's flags come from the `server`
    configuration in `env`, as `python -m runtime.serve` makes them; with TLS on, `tls`
    is the client context that verifies the gateway's certificate."""
    port = free_port()
    server = load_config(env=env).server
    process = spawn(granian_command("127.0.0.1", port, workers), env=env, **popen)
    url = f"{'https' if server.tls_enabled else 'http'}://127.0.0.1:{port}"
    if not wait_for_http(url + "/health", process, timeout, tls):
        stop(process)
        raise RuntimeError("the gateway did not start under Granian")
    return process, url



@contextmanager
def gateways(*envs: dict[str, str], workers: Sequence[int] = ()) -> Iterator[list[str]]:
    """One gateway per environment (`workers[i]` workers each, 1 by default), stopped on the
    way out, also when a later one fails to start; their URLs."""
    processes: list[subprocess.Popen] = []
    try:
        urls = []
        for i, env in enumerate(envs):
            process, url = start_gateway(env, workers=workers[i] if i < len(workers) else 1)
            processes.append(process)
            urls.append(url)
        yield urls
    finally:
        for process in processes:
            stop(process)


def poll_ready(url: str, until: Callable[[httpx.Response], bool], timeout: float = 10,
               verify: ssl.SSLContext | bool = True) -> httpx.Response:
    """GET /ready until `until(answer)` holds or `timeout` passes; the last answer. Readiness
    comes from background health checks, so a change shows within one check interval, not
    on the very next request."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(url + "/ready", timeout=5, verify=verify)
        if until(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)



def delete_keys(client: Any, pattern: str) -> None:
    """Delete every key matching `pattern` through a valkey-py client: e.g. the rate-limit
    budgets or cache entries a test must start without."""
    for key in client.scan_iter(pattern):
        client.delete(key)
