"""Hot reload: RBAC roles, rate-limit policies and CORS change in CONFIG_FILE and a running
2-worker gateway applies them without a restart and without failing a request of a steady
load; a bad file is refused and the running policies stay. And `kill -HUP` of the Granian
master restarts the workers one at a time without losing a request."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import httpx
import pytest
import yaml

from emulator.processes import stop
from runtime.config import load_config
from tests.conftest import login
from tests.integration.test_cache import bearer
from tests.support import clean_env, start_gateway

ORIGIN = "https://reloaded.example"


def roles_document(extra_viewer_grants: tuple[str, ...] = ()) -> dict:
    roles = load_config(env={}).rbac.roles
    doc = {name: {"parents": list(r.parents), "permissions": list(r.permissions)} for name, r in roles.items()}
    doc["viewer"]["permissions"] += list(extra_viewer_grants)
    return doc


def write(path, *, viewer_grants=(), origins=("http://localhost:3000",), user_limit=1_000_000,
          login_limit=1_000_000, raw=None) -> None:
    text = raw if raw is not None else yaml.safe_dump({
        "rbac": {"roles": roles_document(viewer_grants)},
        "cors": {"allowed_origins": list(origins)},
        "rate_limits": {"policies": {
            "user": {"limit": user_limit, "window": "1m", "key": "user"},
            "anonymous": {"limit": 1_000_000, "window": "1m", "key": "ip"},
            "login": {"limit": login_limit, "window": "1m", "key": "email_ip"},
        }},
    })
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomic, as config management tools write files


class SteadyLoad:
    """Requests on fresh connections (so both workers serve them) until stopped; every
    answer must be one the current phase allows, and none may fail to arrive."""

    def __init__(self, url: str, headers: dict) -> None:
        self.url, self.headers = url, headers
        self.statuses: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with httpx.Client(base_url=self.url, timeout=10) as c:
                    self.statuses.append(c.get("/api/v1/crm/customers", headers=self.headers).status_code)
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))

    def __enter__(self) -> "SteadyLoad":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)


def poll(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture()
def reloading(stack, tmp_path):
    path = tmp_path / "gateway.yaml"
    write(path)
    env = clean_env(**stack.environment(), CONFIG_FILE=str(path), ERP_SERVER_RELOAD_INTERVAL="100ms",
                    ERP_LOGGING_LEVEL="warning")
    process, url = start_gateway(env, workers=2)
    yield path, url, process
    stop(process)


def test_policies_reload_without_a_restart_or_a_failed_request(reloading):
    path, url, _process = reloading
    with httpx.Client(base_url=url, timeout=10) as c:
        viewer = bearer(login(c, "viewer@acme.example"))

    def preflight_allowed() -> bool:
        with httpx.Client(base_url=url, timeout=10) as c:  # fresh connections: any worker
            return all(c.options("/api/v1/crm/customers", headers={
                "Origin": ORIGIN, "Access-Control-Request-Method": "GET"}).status_code == 204 for _ in range(4))

    def employees_status() -> set[int]:
        statuses = set()
        for _ in range(4):
            with httpx.Client(base_url=url, timeout=10) as c:
                statuses.add(c.get("/api/v1/hrm/employees", headers=viewer).status_code)
        return statuses

    with SteadyLoad(url, viewer) as load:
        assert employees_status() == {403}
        write(path, viewer_grants=("hrm.employees:read",), origins=("http://localhost:3000", ORIGIN))
        assert poll(lambda: employees_status() == {200}), "RBAC change not applied by every worker"
        assert poll(preflight_allowed), "CORS change not applied by every worker"

        # A bad file (a role hierarchy with a cycle) is refused: the running policies stay.
        bad = roles_document(("hrm.employees:read",))
        bad["viewer"]["parents"] = ["admin"]
        write(path, raw=yaml.safe_dump({"rbac": {"roles": bad}}))
        time.sleep(0.5)  # several check intervals: nothing may change
        assert employees_status() == {200} and preflight_allowed()
        write(path, raw="rbac: [not, a, mapping")  # not even YAML
        time.sleep(0.5)
        assert employees_status() == {200}

        # Rate limits: the viewer's budget drops to 5 a minute.
        write(path, viewer_grants=("hrm.employees:read",), user_limit=5)
        assert poll(lambda: 429 in employees_status()), "rate-limit change not applied"
    assert load.failures == []
    assert load.statuses and set(load.statuses) <= {200, 429}, set(load.statuses)


def graphql(url: str, query: str, headers: dict | None = None) -> list[str]:
    """The error codes of one GraphQL request on a fresh connection (any worker)."""
    with httpx.Client(base_url=url, timeout=10) as c:
        answer = c.post("/graphql", json={"query": query}, headers=headers or {})
    return [e["extensions"]["code"] for e in answer.json().get("errors", [])]


def test_graphql_rate_limits_reload_with_rest(reloading):
    """GraphQL's own checks (the default user budget of /graphql, the `login` policy of the
    login mutation) are built per worker on first use; a policy change reaches them too."""
    path, url, _process = reloading
    with httpx.Client(base_url=url, timeout=10) as c:
        viewer = bearer(login(c, "viewer@acme.example"))
    login_mutation = 'mutation { login(email: "manager@globex.example", password: "wrong-password") { accessToken } }'
    for _ in range(8):  # both workers build their GraphQL limits under the first policies
        assert graphql(url, "{ me { email } }", viewer) == []
        assert graphql(url, login_mutation) == ["UNAUTHENTICATED"]
    write(path, user_limit=5, login_limit=2)
    assert poll(lambda: "RATE_LIMITED" in graphql(url, "{ me { email } }", viewer)), "user budget not reloaded"
    assert poll(lambda: graphql(url, login_mutation) == ["RATE_LIMITED"]), "login policy not reloaded"


@pytest.fixture()
def shared_listener(stack, tmp_path):
    """A 2-worker gateway whose workers share one listener (runtime.serve, ERP_SERVER_SHARED_LISTENER)."""
    env = clean_env(**stack.environment(), ERP_SERVER_SHARED_LISTENER="true", ERP_LOGGING_LEVEL="warning")
    process, url = start_gateway(env, workers=2)
    yield None, url, process
    stop(process)


def test_sighup_restarts_workers_one_at_a_time_without_losing_a_request(shared_listener):
    _path, url, process = shared_listener
    with httpx.Client(base_url=url, timeout=10) as c:
        admin = bearer(login(c, "admin@acme.example"))

    def workers() -> set[str]:
        return set(subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split())

    before = workers()
    assert len(before) == 2
    with SteadyLoad(url, admin) as load:
        time.sleep(0.5)
        os.kill(process.pid, signal.SIGHUP)
        assert poll(lambda: len(workers() - before) == 2 and len(workers()) == 2, timeout=60), workers()
        served = len(load.statuses)
        assert poll(lambda: len(load.statuses) > served + 20)  # the new workers serve
    assert load.failures == []
    assert set(load.statuses) == {200}
