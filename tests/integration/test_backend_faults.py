"""The gateway under backend faults: killed, slow and failing backends, with real processes.

Its own stack (these tests kill and slow services) and two gateways on Granian: `breaker`
with a short cool-down and call timeout, and `retry` whose breaker never opens, so retries
and their budget can be counted at the emulator. Cache and rate limits are off: a cached
list would hide the backend, and the bursts would hit the limits.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
import pytest

from emulator.processes import stop
from emulator.services.faults import NO_FAULT, Fault
from tests.conftest import StackThread
from tests.support import DEMO_PASSWORD, granian_env, start_gateway

CRM, HRM, FINANCE = "/api/v1/crm/customers", "/api/v1/hrm/employees", "/api/v1/finance/invoices"
# grpc.timeout of both gateways: every backend call's deadline. Long enough that the healthy
# backends answer a burst of 50 within it on one busy core (0.5 s did not, pinned under load).
TIMEOUT = 2.0
COOLDOWN = 1.0  # breaker cool-down of the `breaker` gateway
FLOOR, RATIO, MAX_RETRY = 10, 0.2, 3  # the `retry` gateway's budget (the defaults)
COMMON = {
    "ERP_GRPC_TIMEOUT": f"{TIMEOUT}s",
    "ERP_GRPC_HEALTH_INTERVAL": "500ms",
    "ERP_CACHE_ENABLED": "false",
    "ERP_RATE_LIMITS_ENABLED": "false",
}


@dataclass
class Faulty:
    stack: StackThread
    breaker: str  # gateway URLs
    retry: str
    token: str

    def server(self, name: str):
        return self.stack.stack.backends.servers[name]

    def fault(self, name: str, fault: Fault) -> None:
        self.stack.call(setattr, self.server(name).interceptor, "fault", fault)

    def calls(self, name: str, method: str) -> int:
        service = {"crm": "CrmService", "hrm": "HrmService", "finance": "FinanceService"}[name]
        return self.stack.call(lambda: self.server(name).interceptor.calls[f"/erp.{name}.v1.{service}/{method}"])

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def faulty():
    stack = StackThread()
    breaker = retry = None
    try:
        breaker, breaker_url = start_gateway(granian_env(
            stack.environment(), **COMMON, ERP_GRPC_BREAKER_COOLDOWN=f"{COOLDOWN}s",
            ERP_GRPC_BREAKER_FAILURE_THRESHOLD="5"))
        retry, retry_url = start_gateway(granian_env(
            stack.environment(), **COMMON, ERP_GRPC_BREAKER_FAILURE_THRESHOLD="100000",
            ERP_GRPC_RETRY_BACKOFF_BASE="10ms", ERP_GRPC_RETRY_BACKOFF_MAX="50ms"))
        signed_in = httpx.post(breaker_url + "/api/v1/auth/login", timeout=10,
                               json={"email": "admin@acme.example", "password": DEMO_PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        yield Faulty(stack, breaker_url, retry_url, signed_in.json()["data"]["access_token"])
    finally:
        stop(breaker)
        stop(retry)
        stack.close()


@pytest.fixture(autouse=True)
def healthy(faulty):
    """Every test starts and ends with every service up, unfaulted, and answering."""
    recover(faulty)
    yield
    recover(faulty)


def recover(f: Faulty, timeout: float = 15) -> None:
    for name in ("crm", "hrm", "finance"):
        f.fault(name, NO_FAULT)
        if not f.stack.call(lambda n=name: f.server(n).running):
            f.stack.run(f.server(name).restart())
    deadline = time.monotonic() + timeout
    for url in (f.breaker, f.retry):
        for path in (CRM, HRM, FINANCE):
            while httpx.get(url + path, headers=f.headers(), timeout=5).status_code != 200:
                assert time.monotonic() < deadline, f"{url}{path} did not recover"
                time.sleep(0.05)


@dataclass
class Answer:
    path: str
    status: int
    seconds: float
    headers: httpx.Headers
    body: dict


def burst(url: str, headers: dict, paths: list[str], method: str = "GET", json: dict | None = None) -> list[Answer]:
    """Send every request at once; each answer with how long it took."""

    async def one(client: httpx.AsyncClient, path: str) -> Answer:
        started = time.monotonic()
        answer = await client.request(method, path, headers=headers, json=json)
        return Answer(path, answer.status_code, time.monotonic() - started, answer.headers, answer.json())

    async def run() -> list[Answer]:
        limits = httpx.Limits(max_connections=len(paths))
        async with httpx.AsyncClient(base_url=url, timeout=15, limits=limits) as client:
            return await asyncio.gather(*(one(client, p) for p in paths))

    return asyncio.run(run())


def ready(url: str) -> dict:
    return httpx.get(url + "/ready", timeout=5).json()["data"]["dependencies"]


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_killed_crm_fails_fast_while_hrm_and_finance_answer_then_recovers(faulty):
    crm = faulty.server("crm")
    faulty.stack.run(crm.kill())
    answers = burst(faulty.breaker, faulty.headers(), [CRM] * 20 + [HRM] * 15 + [FINANCE] * 15)
    crm_answers = [a for a in answers if a.path == CRM]
    assert {(a.status, a.body["code"]) for a in crm_answers} == {(503, "BACKEND_UNAVAILABLE")}
    # 503, not 504 BACKEND_TIMEOUT: each failed at once, none waited for its deadline.
    assert all(a.status == 200 for a in answers if a.path != CRM), [(a.path, a.status) for a in answers]
    refused = [a for a in crm_answers if "Retry-After" in a.headers]
    assert refused, "the breaker never opened"
    assert all(a.headers["Retry-After"] == "1" for a in refused)  # whole seconds left of a 1 s cool-down

    # Once open, every CRM call is refused at the gateway, with Retry-After.
    later = burst(faulty.breaker, faulty.headers(), [CRM] * 5)
    assert all(a.status == 503 and "Retry-After" in a.headers for a in later)
    assert ready(faulty.breaker)["crm"]["breaker"] != "closed"
    assert wait_for(lambda: ready(faulty.breaker)["crm"]["status"] == "down")
    assert wait_for(lambda: ready(faulty.breaker)["hrm"]["status"] == "up")

    faulty.stack.run(crm.restart())
    # Back after a cool-down and the channel's reconnect backoff (at most 1 s): polled.
    assert wait_for(lambda: httpx.get(faulty.breaker + CRM, headers=faulty.headers()).status_code == 200, 15)
    report = ready(faulty.breaker)["crm"]
    assert report["breaker"] == "closed"
    assert wait_for(lambda: ready(faulty.breaker)["crm"]["status"] == "up")


def test_slow_crm_gives_504_at_the_deadline_with_nothing_left_running(faulty):
    faulty.fault("crm", Fault(latency=10.0))
    answers = burst(faulty.breaker, faulty.headers(), [CRM] * 25 + [HRM] * 5)
    crm_answers = [a for a in answers if a.path == CRM]
    assert {(a.status, a.body["code"]) for a in crm_answers} == {(504, "BACKEND_TIMEOUT")}
    # Each waited for its deadline (504, not the backend's 10 s answer), and no less.
    assert all(a.seconds >= TIMEOUT * 0.9 for a in crm_answers)
    assert all(a.status == 200 for a in answers if a.path == HRM), [(a.path, a.status) for a in answers]
    # No pile-up: the emulator's handlers were cancelled at the deadline, the gateway holds no call.
    assert wait_for(lambda: faulty.stack.call(lambda: faulty.server("crm").interceptor.in_flight) == 0, 10)
    assert ready(faulty.breaker)["crm"]["in_flight"] == 0
    # Timeouts count as failures: the breaker is open now, and fails fast instead of waiting.
    before = faulty.calls("crm", "ListCustomers")
    quick = burst(faulty.breaker, faulty.headers(), [CRM] * 5)
    # Refused at the gateway without a call; if the 1 s cool-down ran out meanwhile (a slow
    # machine), one half-open probe may have gone through.
    probes = faulty.calls("crm", "ListCustomers") - before
    assert probes <= 1
    assert sum(a.status == 503 and "Retry-After" in a.headers for a in quick) >= len(quick) - probes


def test_an_idempotent_read_is_retried_on_unavailable(faulty):
    before = faulty.calls("crm", "ListCustomers")
    faulty.fault("crm", Fault(error_rate=1.0))
    answer = httpx.get(faulty.retry + CRM, headers=faulty.headers())
    assert answer.status_code == 503 and answer.json()["code"] == "BACKEND_UNAVAILABLE"
    assert faulty.calls("crm", "ListCustomers") - before == 1 + MAX_RETRY


def test_a_flaky_read_succeeds_through_retries(faulty):
    faulty.stack.call(faulty.server("hrm").interceptor.random.seed, 3)
    faulty.fault("hrm", Fault(error_rate=0.5))
    before = faulty.calls("hrm", "ListEmployees")
    statuses = [httpx.get(faulty.retry + HRM, headers=faulty.headers()).status_code for _ in range(10)]
    assert faulty.calls("hrm", "ListEmployees") - before > 10  # some calls were retried
    assert statuses.count(200) >= 8  # without retries, about half would fail


def test_a_write_is_never_retried(faulty):
    before = faulty.calls("crm", "CreateCustomer")
    faulty.fault("crm", Fault(error_rate=1.0))
    answer = httpx.post(faulty.retry + CRM, headers=faulty.headers(), json={"name": "Never twice"})
    assert answer.status_code == 503
    assert faulty.calls("crm", "CreateCustomer") - before == 1


def test_the_retry_budget_caps_retries_under_a_total_outage(faulty):
    requests = 40
    faulty.fault("finance", Fault(error_rate=1.0))
    before = faulty.calls("finance", "ListInvoices")
    answers = burst(faulty.retry, faulty.headers(), [FINANCE] * requests)
    calls = faulty.calls("finance", "ListInvoices") - before
    assert all(a.status == 503 for a in answers)
    assert requests < calls <= requests * (1 + RATIO) + FLOOR  # without a budget: requests * 4
