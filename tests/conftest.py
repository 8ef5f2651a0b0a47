"""Shared fixtures: real processes on loopback, as a frontend would meet them.

- `stack`: embedded valkey-server and the emulated backends (real gRPC servers and the
  JWKS HTTP server) on free ports, run in a background thread of this process so tests can
  reach into the auth emulator (mint odd tokens, rotate keys).
- `gateway`: the real gateway on Granian (a subprocess), pointed at `stack`.
- Every answer a test receives from a gateway through httpx is checked against the OpenAPI
  document (tests/contract.py): an answer the document does not describe fails the test.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import valkey

from emulator.processes import stop
from runtime.config import load_config

from tests.contract import contract
from tests.support import DEMO_PASSWORD, granian_env, start_gateway


def _check_answer(response: httpx.Response) -> None:
    # A gateway's answer always carries X-Request-ID; other servers (JWKS, bench apps) are not checked.
    if "x-request-id" not in response.headers:
        return
    request = response.request
    problems = contract().problems(request.method, request.url.path, response.status_code,
                                   response.headers, response.content)
    assert not problems, ("answer does not match /openapi.json (fix the route's @endpoint declarations: response=, "
                          "errors=, upstream=; see runtime/openapi.py):\n  " + "\n  ".join(problems))


@pytest.fixture(autouse=True, scope="session")
def answers_match_the_document():
    """Patch httpx so that every answer (not streamed) is checked as it arrives."""
    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

    def send(self, request, **kwargs):
        response = sync_send(self, request, **kwargs)
        if not kwargs.get("stream"):
            _check_answer(response)
        return response

    async def asend(self, request, **kwargs):
        response = await async_send(self, request, **kwargs)
        if not kwargs.get("stream"):
            _check_answer(response)
        return response

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.Client, "send", send)
        patch.setattr(httpx.AsyncClient, "send", asend)
        yield


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Which documented answers the run checked: operations never exercised are listed."""
    seen = contract().seen
    if not seen:
        return
    operations = {(m.upper(), p) for p, item in contract().doc["paths"].items() for m in item}
    hit = {(m, p) for m, p, _ in seen}
    missed = sorted(operations - hit)
    terminalreporter.write_line(f"contract: {sum(seen.values())} answers checked against /openapi.json, "
                                f"{len(hit)}/{len(operations)} operations, {len(seen)} (operation, status) pairs")
    if missed and len(missed) <= 12:  # a partial run misses many; the whole suite should miss none
        terminalreporter.write_line("contract: not exercised: " + ", ".join(f"{m} {p}" for m, p in missed))


class StackThread:
    """A LocalStack on its own event loop in a daemon thread."""

    def __init__(self, tls: dict[str, Any] | None = None) -> None:
        """`tls`: service -> grpc.ServerCredentials, for backends that serve TLS."""
        from emulator.stack import LocalStack

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stack = LocalStack(load_config(env={}), free_ports=True, tls=tls)
        self.run(self.stack.start())

    def run(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, fn, *args, **kwargs) -> Any:
        """Run a plain function on the stack's loop (its objects are not thread-safe)."""

        async def wrapper():
            return fn(*args, **kwargs)

        return self.run(wrapper())

    @property
    def auth(self):
        return self.stack.backends.auth

    def environment(self) -> dict[str, str]:
        return self.stack.environment()

    def close(self) -> None:
        self.run(self.stack.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="session")
def stack():
    running = StackThread()
    yield running
    running.close()


@pytest.fixture(scope="module")
def own_stack():
    """A stack for one module alone, for tests that stop, break or rotate what the session's
    `stack` serves every other test."""
    running = StackThread()
    yield running
    running.close()


@dataclass
class Gateway:
    url: str
    process: Any

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)


@pytest.fixture(scope="session")
def gateway(stack, tmp_path_factory):
    # Logs into a file under the base temp dir, at GATEWAY_TEST_LOG_LEVEL (warning by default;
    # tests/integration/test_logs.py runs other suites at debug and searches every log they
    # left for secrets).
    log_path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    level = os.environ.get("GATEWAY_TEST_LOG_LEVEL", "warning")
    with open(log_path, "wb") as log_file:
        process, url = start_gateway(granian_env(stack.environment(), ERP_LOGGING_LEVEL=level), workers=1,
                                     stdout=log_file, stderr=subprocess.STDOUT)
    yield Gateway(url, process)
    stop(process)


@pytest.fixture()
def http(gateway):
    with gateway.client() as client:
        yield client


def login(client: httpx.Client, email: str = "admin@acme.example", password: str = DEMO_PASSWORD) -> dict:
    answer = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


@pytest.fixture(scope="module")
def store(stack):
    """A plain client of the stack's valkey-server: what the gateway keeps there, as it is."""
    v = stack.stack.valkey
    client = valkey.Valkey(host=v.host, port=v.port)
    yield client
    client.close()


def signed_in(gateway: Gateway, email: str) -> httpx.Client:
    """A client of the shared gateway carrying a fresh access token of `email`."""
    with gateway.client() as anonymous:
        token = login(anonymous, email)["access_token"]
    return gateway.client(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def acme(gateway):
    """The Acme admin, signed in for the module."""
    with signed_in(gateway, "admin@acme.example") as client:
        yield client


@pytest.fixture(scope="module")
def globex(gateway):
    """The Globex admin (another organization), signed in for the module."""
    with signed_in(gateway, "admin@globex.example") as client:
        yield client


@pytest.fixture()
def session(http) -> dict:
    """A fresh sign-in of the Acme admin: {user, access_token, refresh_token, ...}."""
    return login(http)
