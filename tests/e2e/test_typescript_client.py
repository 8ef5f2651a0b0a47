"""The TypeScript client of clients/typescript, as a frontend developer uses it: regenerated from
the document (and the committed one must be current), type-checked with tsc, and a Node program
with it against the real gateway on Granian: sign in, profile, list, create, update and delete a
customer, refresh, sign out, and the 401 after it. The Node packages come from
tests/peers/typescript.sh; a missing one fails here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "typescript"


def _run(*command: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(command, cwd=CLIENT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    assert shutil.which("node") and shutil.which("npm"), "node and npm are needed (tests/peers/apt.txt)"
    assert (CLIENT / "node_modules" / ".bin" / "tsc").exists(), "run tests/peers/typescript.sh"
    fresh = tmp_path_factory.mktemp("ts") / "schema.d.ts"
    generated = _run("bash", "generate.sh", str(fresh))
    assert generated.returncode == 0, generated.stderr
    committed = (CLIENT / "src" / "schema.d.ts").read_text()
    assert fresh.read_text() == committed, "clients/typescript/src/schema.d.ts is stale: run `npm run generate` there"
    compiled = _run("npx", "--no-install", "tsc", "-p", ".")
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    return CLIENT / "dist" / "examples" / "journey.js"


def test_the_typed_client_runs_a_frontend_journey(built, gateway):
    run = _run("node", str(built), gateway.url, "admin@acme.example", "demo-pass-123", timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    steps = {line["step"]: line for line in map(json.loads, run.stdout.splitlines())}
    assert steps["login"] == {"step": "login", "status": 200, "token_type": "Bearer"}
    assert steps["me"]["email"] == "admin@acme.example"
    assert steps["list"]["status"] == 200
    assert steps["create"]["status"] == 201
    assert steps["create"]["location"] == f"/api/v1/crm/customers/{steps['create']['id']}"
    assert steps["update"]["customer_status"] == "active"
    assert steps["delete"] == {"step": "delete", "status": 200, "data": None}
    assert steps["refresh"]["new_access_token"] is True
    assert steps["logout"] == {"step": "logout", "status": 200, "data": None}
    assert steps["after-logout"] == {"step": "after-logout", "status": 401, "code": "UNAUTHENTICATED"}


def test_tsc_refuses_a_wrong_use_of_the_types(built, tmp_path):
    """The types are exact (not `any`): a body missing a required field does not compile."""
    wrong = CLIENT / "examples" / "_wrong_use.ts"
    wrong.write_text(
        'import { createGatewayClient } from "../src/index.js";\n'
        'const api = createGatewayClient("http://x");\n'
        'await api.POST("/api/v1/crm/customers", { body: { status: "lead" } });\n'
    )
    try:
        compiled = _run("npx", "--no-install", "tsc", "-p", ".", "--noEmit")
    finally:
        wrong.unlink()
    assert compiled.returncode != 0
    assert "_wrong_use.ts" in compiled.stdout and "'name' is missing" in compiled.stdout, compiled.stdout
