"""Logs: one ECS JSON line per request on stdout, a level filter that works, and no credential
anywhere in what the bad-token and bad-input suites make the gateway log."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import httpx

from emulator.ports import free_port
from emulator.processes import stop
from tests.support import DEMO_PASSWORD, granian_env, start_gateway

ROOT = Path(__file__).resolve().parents[2]


def start_logging_gateway(env: dict, log_path: Path):
    with open(log_path, "wb") as log_file:
        # stdout only: the request log must be there, not on stderr.
        return start_gateway(env, stdout=log_file, stderr=subprocess.DEVNULL)


def lines_of(log_path: Path) -> list[dict]:
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]


def wait_for_line(log_path: Path, match) -> dict:
    """Poll the log file until a line satisfies `match` (the worker writes it after answering)."""
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in lines_of(log_path):
            if match(line):
                return line
        time.sleep(0.05)
    raise AssertionError(f"no such log line in {log_path.read_text()[-3000:]}")


def test_one_ecs_line_per_request_on_stdout(stack, tmp_path):
    log_path = tmp_path / "gateway.log"
    process, url = start_logging_gateway(granian_env(stack.environment(), ERP_LOGGING_LEVEL="info"), log_path)
    trace_id = secrets.token_hex(16)
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            signed_in = client.post("/api/v1/auth/login", json={"email": "viewer@acme.example", "password": DEMO_PASSWORD})
            user = signed_in.json()["data"]["user"]
            me = client.get("/api/v1/auth/me", headers={
                "Authorization": "Bearer " + signed_in.json()["data"]["access_token"],
                "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
                "X-Request-ID": "req-log-test-0001",
            })
            assert me.status_code == 200
        line = wait_for_line(log_path, lambda d: d.get("http.request.id") == "req-log-test-0001")
        lines = [d for d in lines_of(log_path) if d.get("http.request.id") == "req-log-test-0001"]
    finally:
        stop(process)
    assert len(lines) == 1  # one line per request
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["@timestamp"])
    assert line["log.level"] == "info"
    assert line["message"] == "GET /api/v1/auth/me 200"
    assert line["http.request.method"] == "GET"
    assert line["url.path"] == "/api/v1/auth/me"
    assert line["http.route"] == "/api/v1/auth/me"
    assert line["http.response.status_code"] == 200
    assert isinstance(line["event.duration"], int) and line["event.duration"] > 0  # nanoseconds
    assert line["trace.id"] == trace_id
    assert line["user.id"] == user["id"]
    assert line["organization.id"] == user["organization_id"]
    assert line["ecs.version"]


def test_the_level_filter(stack, tmp_path):
    """At `warning`, requests write no info line, and a warning still gets through."""
    log_path = tmp_path / "gateway.log"
    # Valkey on a port nobody listens on: rate limits fall back to local counting, with a warning.
    env = granian_env(stack.environment(), ERP_LOGGING_LEVEL="warning", ERP_REDIS_PORT=str(free_port()))
    process, url = start_logging_gateway(env, log_path)
    try:
        for _ in range(3):
            httpx.post(url + "/api/v1/auth/login", json={"email": "viewer@acme.example", "password": DEMO_PASSWORD}, timeout=10)
        wait_for_line(log_path, lambda d: d["log.level"] == "warning" and "rate limits" in d["message"])
    finally:
        stop(process)
    levels = {d["log.level"] for d in lines_of(log_path)}
    assert levels and levels <= {"warning", "error"}, levels
    assert not any(d.get("log.logger") == "gateway.access" for d in lines_of(log_path))


# What the two suites send that must never be written down: their passwords, and any token
# (a JWS starts with base64url of '{"': eyJ), or an Authorization value.
PASSWORDS = [DEMO_PASSWORD, "correct-horse-battery", "wrong-password", "whatever1", "something-else-entirely"]
SECRET_SHAPES = [re.compile(r"eyJ[A-Za-z0-9_-]{10,}"), re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/-]{8,}"),
                 re.compile(r'(?i)"[^"]*(password|secret|authorization|token)[^"]*"\s*:\s*"(?!\[REDACTED\])[^"]+"')]


def test_bad_token_and_bad_input_suites_log_no_secret(tmp_path):
    basetemp = tmp_path / "suites"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", f"--basetemp={basetemp}",
         "tests/integration/test_hostile_tokens.py", "tests/integration/test_bad_input.py"],
        cwd=ROOT, env={**os.environ, "GATEWAY_TEST_LOG_LEVEL": "debug"}, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    logs = sorted(basetemp.rglob("*.log"))
    assert len(logs) >= 2  # the shared gateway's and the hostile-token suite's own
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert text.count('"log.level":"debug"') > 0 and text.count('"gateway.access"') > 50  # they did log
    for password in PASSWORDS:
        assert password not in text, password
    for shape in SECRET_SHAPES:
        found = shape.search(text)
        assert found is None, found.group(0)
