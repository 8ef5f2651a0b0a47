"""The gateway's image, built here by podman from infra/Dockerfile on a Debian base made locally
with debootstrap (infra/build-image.sh; no image registry is reachable), then run as an operator
would: read-only root, a memory /tmp, the image's own user, entry point, environment and
HEALTHCHECK. The emulated backends and Valkey are the `stack` fixture (the LocalStack that
`gw backends` runs) on loopback, reached through the host network.

A missing podman fails here, never skips: tests/peers/apt.txt installs it and tests/peers/image.sh
makes the base. The image build is cached by podman's layers; a change in the sources rebuilds
from the pip install step (about a minute on 2 cores)."""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess

import httpx
import pytest

from emulator.ports import free_port, wait_for_http

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = ROOT / "infra" / "build-image.sh"
# One tag per checkout: suites of several worktrees on one machine share podman's storage.
TAG = f"localhost/erp-gateway:test-{hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]}"

pytestmark = pytest.mark.slow


def podman_env() -> dict[str, str]:
    """This machine's podman settings (runtime and rlimits it accepts), as the build used them."""
    conf = subprocess.run(["bash", str(BUILD), "containers-conf"], capture_output=True, text=True, check=True)
    return {**os.environ, "CONTAINERS_CONF": conf.stdout.strip()}


def podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image() -> str:
    assert shutil.which("podman"), "podman is missing: tests/peers/apt.txt installs it"
    build = subprocess.run(["bash", str(BUILD), "build", TAG], capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return TAG


def test_the_image_is_non_root_with_a_healthcheck_and_no_build_tools(image):
    inspect = podman("image", "inspect", "--format",
                     "{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.Healthcheck.Test}}", image)
    assert inspect.returncode == 0, inspect.stderr
    user, entrypoint, healthcheck = inspect.stdout.strip().split("|")
    assert user == "10001:10001"
    assert entrypoint == '["python3","-m","runtime.serve"]'
    assert healthcheck == '["CMD","python3","-m","runtime.probe"]'  # kept: the image is in docker format
    probe = podman("run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c",
                   "id -u; for tool in gcc cc make pip pip3; do command -v $tool || true; done;"
                   " python3 -m pip --version 2>/dev/null || echo no-pip")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["10001", "no-pip"], probe.stdout


def test_the_container_serves_the_gateway_and_stops_gracefully(image, stack, tmp_path):
    port = free_port()
    name = f"erp-gateway-test-{port}"
    settings = {**stack.environment(), "GRANIAN_HOST": "127.0.0.1", "GRANIAN_PORT": str(port),
                "ERP_LOGGING_LEVEL": "warning"}
    command = ["podman", "run", "--rm", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
               # No systemd here to time the HEALTHCHECK: the test runs it with `podman healthcheck run`.
               "--health-interval", "disable"]
    for key, value in settings.items():
        command += ["--env", f"{key}={value}"]
    log = (tmp_path / "container.log").open("wb")
    container = subprocess.Popen([*command, image], env=podman_env(), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_http(url + "/health", container, 90), (tmp_path / "container.log").read_text()[-3000:]
        with httpx.Client(base_url=url, timeout=10) as http:
            ready = http.get("/ready").json()
            assert ready["success"] is True
            assert {dep["status"] for dep in ready["data"]["dependencies"].values()} == {"up"}
            denied = http.get("/api/v1/auth/me")
            assert denied.status_code == 401 and denied.json()["success"] is False
            login = http.post("/api/v1/auth/login", json={"email": "admin@acme.example", "password": "demo-pass-123"})
            assert login.status_code == 200, login.text
            token = login.json()["data"]["access_token"]
            me = http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200 and me.json()["data"]["email"] == "admin@acme.example", me.text
        assert podman("healthcheck", "run", name).returncode == 0  # the image's HEALTHCHECK sees it healthy
        stop = podman("stop", "--time", "30", name)
        assert stop.returncode == 0, stop.stderr
        assert container.wait(40) == 0, "SIGTERM did not stop the gateway cleanly"
    finally:
        if container.poll() is None:
            podman("rm", "--force", name)
            container.wait(30)
        log.close()
