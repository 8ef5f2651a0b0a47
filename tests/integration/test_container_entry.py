"""The image's entry command, run here exactly as the container would run it: the final
stage's ENV, ENTRYPOINT + CMD and HEALTHCHECK read from infra/Dockerfile, on this venv: a fast
check of the command and its settings. tests/e2e/test_container_image.py builds the image with
podman and runs the same command inside it."""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import subprocess
import sys

import httpx

from emulator.ports import free_port, wait_for_http
from emulator.processes import spawn, stop

from tests.support import clean_env

DOCKERFILE = pathlib.Path(__file__).resolve().parents[2] / "infra" / "Dockerfile"
BIN = pathlib.Path(sys.executable).parent


def final_stage() -> dict[str, object]:
    """ENV, the entry command and the HEALTHCHECK command of the Dockerfile's last stage."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    last = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    stage: dict[str, object] = {"env": {}}
    for line in lines[last:]:
        instruction, _, rest = line.partition(" ")
        if instruction == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                stage["env"][key] = value  # type: ignore[index]
        elif instruction in ("ENTRYPOINT", "CMD"):
            stage[instruction] = json.loads(rest)
        elif instruction == "HEALTHCHECK":
            stage["HEALTHCHECK"] = json.loads(rest.split(" CMD ", 1)[1])
    return stage


def run_as_container(stage: dict, stack_env: dict[str, str], port: int) -> subprocess.Popen:
    env = clean_env(**stage["env"], **stack_env)
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"  # the image's /opt/gateway/bin
    env.update(GRANIAN_HOST="127.0.0.1", GRANIAN_PORT=str(port), ERP_LOGGING_LEVEL="warning")
    command = [*stage["ENTRYPOINT"], *stage["CMD"]]
    if command[0].startswith("python"):
        command[0] = sys.executable  # the image's /opt/gateway/bin/python3
    return spawn(command, env=env)


def healthcheck(stage: dict, port: int) -> int:
    command = stage["HEALTHCHECK"]
    command = [sys.executable, *command[1:]] if command[0].startswith("python") else command
    env = clean_env(GRANIAN_PORT=str(port))
    return subprocess.run(command, env=env, timeout=30).returncode


def test_the_entry_command_serves_the_gateway_and_the_healthcheck_sees_it(stack):
    stage = final_stage()
    assert stage["ENTRYPOINT"] == ["python3", "-m", "runtime.serve"] and stage["CMD"] == ["runtime.app:create_app"]
    port = free_port()
    assert healthcheck(stage, port) == 1  # nothing listening yet: unhealthy
    process = run_as_container(stage, stack.environment(), port)
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_for_http(url + "/health", process, 30), "the image's command did not start the gateway"
        login = httpx.post(url + "/api/v1/auth/login", json={"email": "admin@acme.example", "password": "demo-pass-123"})
        assert login.status_code == 200, login.text
        assert httpx.get(url + "/ready").json()["success"] is True
        assert healthcheck(stage, port) == 0
    finally:
        stop(process)
    assert healthcheck(stage, port) == 1
