"""Production shape: `gw backends` and the gateway under Granian with 2 workers, separately."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from emulator.envfile import wait_for_env_file
from emulator.processes import stop
from tests.support import GW, clean_env
from tests.journey import run_auth_journey
from tests.support import granian_env, start_gateway


@pytest.fixture(scope="module")
def backends_env(tmp_path_factory):
    env_file = tmp_path_factory.mktemp("backends") / "backends.env"
    process = subprocess.Popen(
        [*GW, "backends", "--free-ports", "--env-file", str(env_file)],
        env=clean_env(), stdout=subprocess.DEVNULL,
    )
    try:
        yield wait_for_env_file(env_file, process, 60)
    finally:
        stop(process)


def test_two_workers_journey(backends_env):
    process, url = start_gateway(granian_env(backends_env), workers=2)
    try:
        run_auth_journey(lambda: httpx.Client(base_url=url, timeout=10))
    finally:
        stop(process)


def test_gw_token_mints_a_token_the_gateway_accepts(backends_env):
    env = clean_env(**backends_env)
    minted = subprocess.run([*GW, "token", "--email", "manager@acme.example"], env=env, capture_output=True, text=True, timeout=60)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    process, url = start_gateway(granian_env(backends_env), workers=1)
    try:
        me = httpx.get(url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200, me.text
        assert me.json()["data"]["email"] == "manager@acme.example"
    finally:
        stop(process)


def test_granian_refuses_bad_configuration_with_one_line(backends_env):
    from emulator.cli import granian_command
    from emulator.ports import free_port

    env = granian_env(backends_env, ERP_SERVER_PORT="eighty")
    result = subprocess.run(granian_command("127.0.0.1", free_port(), 1), env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "server.port: 'eighty' is not valid" in result.stderr
