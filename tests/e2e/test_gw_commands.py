"""The inspection commands: routes, invoke, config, proto."""

from __future__ import annotations

import json
import subprocess

from runtime.endpoint import discover
from tests.support import GW, clean_env


def gw(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*GW, *args], env=clean_env(**env), capture_output=True, text=True, timeout=120)


def test_routes_lists_every_handler():
    result = gw("routes")
    assert result.returncode == 0, result.stderr
    for route in discover():
        assert any(route.method in line and route.path in line and route.name in line for line in result.stdout.splitlines())


def test_invoke_runs_the_pipeline_in_process():
    result = gw("invoke", "POST", "/api/v1/auth/login", "--data", '{"email": "admin@acme.example", "password": "demo-pass-123"}')
    assert result.returncode == 0, result.stderr
    assert "HTTP 200" in result.stderr
    answer = json.loads(result.stdout)
    assert answer["data"]["token_type"] == "Bearer"


def test_invoke_reports_validation_errors():
    result = gw("invoke", "POST", "/api/v1/auth/login", "--data", '{"email": "nope"}')
    assert result.returncode == 1
    assert "HTTP 400" in result.stderr
    answer = json.loads(result.stdout)
    assert set(answer["errors"]) == {"email", "password"}


def test_invoke_signed_in():
    result = gw("invoke", "GET", "/api/v1/auth/me", "--login", "hr-manager@acme.example")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"]["roles"] == ["hr_manager"]


def test_config_shows_sources_and_masks_secrets():
    result = gw("config", ERP_REDIS_PASSWORD="hunter2-secret", ERP_SERVER_PORT="9090")
    assert result.returncode == 0, result.stderr
    assert "hunter2-secret" not in result.stdout
    port_line = next(line for line in result.stdout.splitlines() if line.startswith("server.port "))
    assert "9090" in port_line and "env:ERP_SERVER_PORT" in port_line


def test_config_marks_keys_that_are_not_acted_on_yet():
    result = gw("config", ERP_SERVER_WRITE_TIMEOUT="5s", ERP_KAFKA_ENABLED="true")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    write_timeout = lines["server.write_timeout"]
    assert "env:ERP_SERVER_WRITE_TIMEOUT" in write_timeout and "[no effect" in write_timeout
    for key in ("jwt.leeway", "grpc.services.auth", "kafka.enabled", "logging.elasticsearch.index", "redis.max_retries"):
        assert "not acted on yet" not in lines[key]


def test_a_typo_in_an_environment_key_stops_gw_with_one_line():
    result = gw("config", ERP_JWT_LEWAY="5s")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "ERP_JWT_LEWAY" in result.stderr
