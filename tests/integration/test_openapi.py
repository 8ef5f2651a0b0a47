"""/openapi.json from the running gateway: a valid OpenAPI 3.1 document, and a property-based
run (schemathesis) against the gateway finds no 5xx and no answer that breaks its schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from openapi_spec_validator import validate

from emulator.processes import stop
from runtime.endpoint import discover
from runtime.openapi import document
from tests.conftest import StackThread, login
from tests.support import granian_env, start_gateway

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "typescript"


def test_openapi_json_is_served_raw_and_valid(gateway):
    with gateway.client() as client:
        answer = client.get("/openapi.json")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    spec = answer.json()
    assert spec["openapi"] == "3.1.0" and "success" not in spec  # the document itself, not an envelope
    validate(spec)
    assert "/api/v1/crm/customers/{id}" in spec["paths"] and "/openapi.json" in spec["paths"]
    # tests/contract.py checks answers against the registry's document: the one served.
    assert spec == orjson.loads(orjson.dumps(document(discover())))


def test_redocly_lint_finds_no_error_and_no_warning(gateway, tmp_path):
    """Redocly CLI (tests/peers/typescript.sh installs it) with clients/typescript/redocly.yaml:
    the strict recommended rules plus contact, license, descriptions and declared tags."""
    with gateway.client() as client:
        (tmp_path / "openapi.json").write_bytes(client.get("/openapi.json").content)
    redocly = CLIENT / "node_modules" / ".bin" / "redocly"
    assert redocly.exists(), "run tests/peers/typescript.sh"
    run = subprocess.run([str(redocly), "lint", "--config", str(CLIENT / "redocly.yaml"), "--format", "stylish",
                          str(tmp_path / "openapi.json")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "warning" not in output.lower() and "error" not in output.lower(), output[-4000:]


@pytest.fixture(scope="module")
def own_gateway():
    """A gateway on its own stack: the fuzzer creates and deletes records freely, and rate
    limits (which would only answer 429) are off so that every generated case reaches a handler."""
    stack = StackThread()
    process, url = start_gateway(granian_env(stack.environment(), ERP_RATE_LIMITS_ENABLED="false"))
    yield url
    stop(process)
    stack.close()


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_violation(own_gateway, tmp_path):
    import httpx

    with httpx.Client(base_url=own_gateway, timeout=10) as client:
        token = login(client)["access_token"]
    command = [
        str(Path(sys.executable).with_name("st")), "run", f"{own_gateway}/openapi.json",
        "--url", own_gateway,
        "--header", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error,response_schema_conformance",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", "5",
        "--seed", "20250101",
        "--generation-database", "none",
        "--workers", "1",
        "--request-timeout", "10",
        # Logging out would revoke the token every other case uses.
        "--exclude-operation-id", "logout",
        "--no-color",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout
