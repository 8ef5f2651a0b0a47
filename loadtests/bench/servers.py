"""The processes a bench run needs (backends, gateway, baseline app) and a small HTTP client.

Everything binds to loopback: the bench never sends load to another machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Collection

import orjson

from emulator.cli import granian_command
from emulator.envfile import wait_for_env_file
from emulator.ports import free_port, wait_for_http
from emulator.processes import spawn
from emulator.services.jwks import JWKS_PATH
from runtime.config import without_configuration

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
HELLO_FACTORY = "loadtests.bench.hello_app:create_app"
FASTAPI_FACTORY = "loadtests.bench.fastapi_app:create_app"
# Access logs would make the gateway benchmark its own logging; the table says so too.
# Rate limits stay on (their Valkey round trip is part of the cost) with budgets wrk cannot
# exhaust, so that every answer measured is a real one, not a 429; so is the cap on requests in
# progress per client address (32): wrk's 50 connections all come from 127.0.0.1.
GATEWAY_ENV = {
    "ERP_LIMITS_MAX_IN_FLIGHT_PER_ADDRESS": "100000",
    "ERP_LOGGING_LEVEL": "warning",
    "ERP_RATE_LIMITS_POLICIES_USER_LIMIT": "60000000",
    "ERP_RATE_LIMITS_POLICIES_ANONYMOUS_LIMIT": "60000000",
    "ERP_RATE_LIMITS_POLICIES_LOGIN_LIMIT": "60000000",
}
DEMO_EMAIL = "admin@acme.example"


class Processes:
    """Children started here, stopped in reverse order on exit, whatever the exit.

    Each child leads its own process group: Ctrl-C then reaches only the bench, which stops
    the children in order, and stopping a Granian master's group takes its workers along.
    `spawn` adds PDEATHSIG, so even a SIGKILLed bench takes its children with it.
    """

    def __init__(self) -> None:
        self._children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        process = spawn(args, env=env, cwd=REPO, stdout=subprocess.DEVNULL, start_new_session=True)
        self._children.append((name, process))
        return process

    def pid(self, name: str) -> int:
        """The process (and process group) id of the child started as `name`."""
        return next(process.pid for child, process in self._children if child == name)

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc: object) -> None:
        while self._children:
            _stop_group(self._children.pop()[1])


def group_cpu_seconds(group: int) -> float:
    """User + system CPU seconds of every live process in a process group (a Granian master
    and its workers): what serving cost, whatever else runs on a shared machine. Linux /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == group:  # pgrp; utime and stime follow at 11 and 12
            total += int(fields[11]) + int(fields[12])
    return total / tick


def _stop_group(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Still unreaped, so the group id is certainly still ours to kill.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _clean_env(**extra: str) -> dict[str, str]:
    """This shell's environment minus its ERP_* settings, so a developer's setup can't leak in."""
    env = without_configuration(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _with_factory(command: list[str], factory: str) -> list[str]:
    """The gateway's Granian command line serving another app: same flags, by construction."""
    command = list(command)
    command[command.index("--factory") + 1] = factory
    return command


def start_backends(processes: Processes, timeout: float = 60.0) -> dict[str, str]:
    """`gw backends` on free ports; returns the ERP_* environment it writes once ready."""
    env_file = Path(tempfile.mkdtemp(prefix="bench-")) / "backends.env"
    process = processes.start(
        "backends",
        [sys.executable, "-m", "emulator.cli", "backends", "--free-ports", "--env-file", str(env_file)],
        _clean_env(),
    )
    env = wait_for_env_file(env_file, process, timeout)
    env_file.unlink()
    env_file.parent.rmdir()
    return env


def start_granian(processes: Processes, name: str, workers: int, env: dict[str, str], factory: str | None = None,
                  ready_path: str = "/", timeout: float = 60.0) -> str:
    """Granian on a free loopback port; returns its base URL once `ready_path` answers 2xx."""
    port = free_port(HOST)
    command = granian_command(HOST, port, workers)
    process = processes.start(name, _with_factory(command, factory) if factory else command, env)
    base = f"http://{HOST}:{port}"
    if not wait_for_http(base + ready_path, process, timeout):
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited during start-up; see its messages above")
        raise RuntimeError(f"{name} did not answer {ready_path} within {timeout:.0f}s")
    return base


def start_uvicorn(processes: Processes, name: str, workers: int, env: dict[str, str], factory: str,
                  ready_path: str, timeout: float = 60.0) -> str:
    """uvicorn with its fast options (uvloop, httptools) on a free loopback port."""
    port = free_port(HOST)
    command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", HOST, "--port", str(port),
               "--workers", str(workers), "--loop", "uvloop", "--http", "httptools",
               "--log-level", "warning", "--no-access-log"]
    process = processes.start(name, command, env)
    base = f"http://{HOST}:{port}"
    if not wait_for_http(base + ready_path, process, timeout):
        raise RuntimeError(f"{name} did not answer {ready_path} within {timeout:.0f}s")
    return base


def start_servers(processes: Processes, workers: int, servers: Collection[str] = frozenset()) -> dict[str, str]:
    """Base URLs by server name, as targets.Target.server names them, plus the emulator's
    JWKS server (its STATS_PATH counts backend calls). The FastAPI comparison starts only
    when a target in `servers` needs it."""
    backends = start_backends(processes)
    gateway = start_granian(processes, "gateway", workers, _clean_env(**backends, **GATEWAY_ENV), ready_path="/health")
    hello = start_granian(processes, "hello", workers, _clean_env(), factory=HELLO_FACTORY)
    emulator = backends["ERP_JWT_JWKS_URL"].removesuffix(JWKS_PATH)
    started = {"gateway": gateway, "hello": hello, "emulator": emulator}
    if "fastapi" in servers:
        started["fastapi"] = start_uvicorn(processes, "fastapi", workers, _clean_env(**backends), FASTAPI_FACTORY,
                                           ready_path="/health")
    return started


class Client:
    """Just enough HTTP to sign in and look up ids before the load starts."""

    TOKEN_MAX_AGE = 300.0  # access tokens live 15 minutes; sign in again well before that

    def __init__(self, base: str) -> None:
        self.base = base
        self._token: str | None = None
        self._token_at = 0.0

    def request(self, method: str, path: str, body: bytes | None = None,
                token: str | None = None) -> tuple[int, bytes]:
        status, _, raw = self.send(method, path, body, token)
        return status, raw

    def send(self, method: str, path: str, body: bytes | None = None,
             token: str | None = None) -> tuple[int, Message, bytes]:
        """Status, response headers and body."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def token(self) -> str:
        if self._token is None or time.monotonic() - self._token_at > self.TOKEN_MAX_AGE:
            from emulator.services.seed import DEMO_PASSWORD

            body = orjson.dumps({"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
            status, raw = self.request("POST", "/api/v1/auth/login", body)
            if status != 200:
                raise RuntimeError(f"login as {DEMO_EMAIL} failed: HTTP {status} {raw[:300]!r}")
            self._token = orjson.loads(raw)["data"]["access_token"]
            self._token_at = time.monotonic()
        return self._token

    def get(self, path: str) -> dict:
        """An authenticated GET that must succeed (for resolving target paths)."""
        status, raw = self.request("GET", path, token=self.token())
        if not 200 <= status < 300:
            raise RuntimeError(f"GET {path}: HTTP {status} {raw[:300]!r}")
        return orjson.loads(raw)
