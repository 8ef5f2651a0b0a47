"""Idempotency-Key on writes, as an integrating system meets it: retries and concurrent
duplicates record one payment (counted at the emulator), replays are marked, a reused key
with another body is 422, scopes never cross, a 4xx is replayed and a restart keeps keys."""

from __future__ import annotations

import concurrent.futures
import time
import uuid

import httpx
import pytest

from emulator.processes import stop
from tests.conftest import login
from tests.integration.test_cache import bearer, calls
from tests.support import granian_env, start_gateway

CREATE_PAYMENT = "/erp.finance.v1.FinanceService/CreatePayment"
CREATE_CUSTOMER = "/erp.crm.v1.CrmService/CreateCustomer"


def an_invoice(http, headers) -> str:
    return http.get("/api/v1/finance/invoices", headers=headers).json()["data"]["items"][0]["id"]


def payment(invoice_id: str, amount: str = "10.00") -> dict:
    # In the invoice's currency (the seed's invoices are in USD): the finance backend refuses others.
    return {"invoice_id": invoice_id, "amount": {"amount": amount, "currency": "USD"}}


def test_twenty_concurrent_duplicates_record_one_payment(stack, gateway, http):
    headers = bearer(login(http, "finance-manager@acme.example"))
    body = payment(an_invoice(http, headers))
    key = {"Idempotency-Key": f"pay-{uuid.uuid4()}"}
    before = calls(stack, "finance", CREATE_PAYMENT)

    def send(_):
        with httpx.Client(base_url=gateway.url, timeout=30) as c:  # one connection each
            return c.post("/api/v1/finance/payments", headers={**headers, **key}, json=body)

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(send, range(20)))
    assert [a.status_code for a in answers] == [201] * 20, [a.text for a in answers if a.status_code != 201]
    assert len({a.json()["data"]["id"] for a in answers}) == 1
    assert calls(stack, "finance", CREATE_PAYMENT) - before == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 19
    assert len({a.headers["Location"] for a in answers}) == 1


def test_a_retry_gets_the_same_answer_without_a_backend_call(stack, http, session):
    headers = {**bearer(session), "Idempotency-Key": '"retry-' + uuid.uuid4().hex + '"'}  # sf-string form
    customer = {"name": "Retry Ltd", "email": "retry@acme.example"}
    first = http.post("/api/v1/crm/customers", headers=headers, json=customer)
    before = calls(stack, "crm", CREATE_CUSTOMER)
    again = http.post("/api/v1/crm/customers", headers=headers, json=customer)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert calls(stack, "crm", CREATE_CUSTOMER) == before


def test_the_same_key_with_another_body_is_422(http, session):
    headers = {**bearer(session), "Idempotency-Key": uuid.uuid4().hex}
    assert http.post("/api/v1/crm/customers", headers=headers, json={"name": "A", "email": "a@acme.example"}).status_code == 201
    other = http.post("/api/v1/crm/customers", headers=headers, json={"name": "B", "email": "b@acme.example"})
    assert other.status_code == 422
    assert other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert "Idempotency-Key" in other.json()["errors"]


def test_keys_are_scoped_to_the_caller(stack, http):
    key = {"Idempotency-Key": uuid.uuid4().hex}
    acme = bearer(login(http, "admin@acme.example"))
    globex = bearer(login(http, "admin@globex.example"))
    body = {"name": "Shared Key", "email": "shared@example.com"}
    a = http.post("/api/v1/crm/customers", headers={**acme, **key}, json=body)
    b = http.post("/api/v1/crm/customers", headers={**globex, **key}, json=body)
    assert a.status_code == b.status_code == 201
    assert a.json()["data"]["id"] != b.json()["data"]["id"]
    assert "Idempotent-Replayed" not in b.headers


def test_a_client_error_is_replayed_a_validation_error_is_not_kept(http, session):
    headers = {**bearer(session), "Idempotency-Key": uuid.uuid4().hex}
    missing = payment(str(uuid.uuid4()))
    first = http.post("/api/v1/finance/payments", headers=headers, json=missing)
    assert first.status_code in (400, 404), first.text
    again = http.post("/api/v1/finance/payments", headers=headers, json=missing)
    assert again.status_code == first.status_code and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["code"] == first.json()["code"]


@pytest.mark.parametrize("key, problem", [
    ("", "must not be empty"),
    ("x" * 256, "at most 255"),
    ("with space", "printable ASCII"),
])
def test_bad_keys_are_400_naming_the_header(http, session, key, problem):
    answer = http.post("/api/v1/crm/customers", headers={**bearer(session), "Idempotency-Key": key},
                       json={"name": "K", "email": "k@acme.example"})
    assert answer.status_code == 400
    assert problem in answer.json()["errors"]["Idempotency-Key"][0]
    assert "x" * 256 not in answer.text  # the unbounded input is not echoed


def test_a_restart_between_the_first_request_and_its_repeat_still_replays(stack):
    env = granian_env(stack.environment())
    process, url = start_gateway(env)
    with httpx.Client(base_url=url, timeout=10) as c:
        headers = {**bearer(login(c, "admin@acme.example")), "Idempotency-Key": uuid.uuid4().hex}
        first = c.post("/api/v1/crm/customers", headers=headers, json={"name": "Restart", "email": "r@acme.example"})
    stop(process)
    process, url = start_gateway(env)
    try:
        before = calls(stack, "crm", CREATE_CUSTOMER)
        with httpx.Client(base_url=url, timeout=10) as c:
            again = c.post("/api/v1/crm/customers", headers=headers, json={"name": "Restart", "email": "r@acme.example"})
        assert again.status_code == 201 and again.json()["data"]["id"] == first.json()["data"]["id"]
        assert calls(stack, "crm", CREATE_CUSTOMER) == before
    finally:
        stop(process)


@pytest.fixture()
def slow_crm_gateway(stack):
    """Its own gateway (its own breaker) with a short wait; CRM faults reset afterwards."""
    from emulator.services.faults import NO_FAULT

    process, url = start_gateway(granian_env(stack.environment(), ERP_IDEMPOTENCY_WAIT="200ms"))
    crm = stack.stack.backends.servers["crm"]
    yield url, lambda fault: stack.call(setattr, crm.interceptor, "fault", fault)
    stack.call(setattr, crm.interceptor, "fault", NO_FAULT)
    stop(process)


def test_a_repeat_while_the_first_still_runs_is_409_then_replays(stack, slow_crm_gateway):
    from emulator.services.faults import Fault

    url, fault = slow_crm_gateway
    with httpx.Client(base_url=url, timeout=30) as c:
        headers = {**bearer(login(c, "admin@acme.example")), "Idempotency-Key": uuid.uuid4().hex}
    body = {"name": "Slow Ltd", "email": "slow@acme.example"}
    before = calls(stack, "crm", CREATE_CUSTOMER)
    fault(Fault(latency=2.0))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(lambda: httpx.post(url + "/api/v1/crm/customers", headers=headers, json=body, timeout=30))
        # Once the first has reached the (slow) backend it holds the key: the repeat waits
        # 200 ms for it, then is refused rather than run.
        while calls(stack, "crm", CREATE_CUSTOMER) == before and not first.done():
            time.sleep(0.01)
        repeat = httpx.post(url + "/api/v1/crm/customers", headers=headers, json=body, timeout=30)
        assert repeat.status_code == 409, repeat.text
        assert repeat.json()["code"] == "CONFLICT" and repeat.headers["Retry-After"] == "1"
        assert first.result().status_code == 201
    fault(Fault())
    replay = httpx.post(url + "/api/v1/crm/customers", headers=headers, json=body, timeout=30)
    assert replay.json()["data"]["id"] == first.result().json()["data"]["id"]
    assert calls(stack, "crm", CREATE_CUSTOMER) - before == 1


def test_a_5xx_is_not_kept_so_the_retry_runs(stack, slow_crm_gateway):
    import grpc

    from emulator.services.faults import Fault

    url, fault = slow_crm_gateway
    with httpx.Client(base_url=url, timeout=30) as c:
        headers = {**bearer(login(c, "admin@acme.example")), "Idempotency-Key": uuid.uuid4().hex}
        body = {"name": "Flaky Ltd", "email": "flaky@acme.example"}
        fault(Fault(error_rate=1.0, error_code=grpc.StatusCode.INTERNAL))
        failed = c.post("/api/v1/crm/customers", headers=headers, json=body)
        fault(Fault())
        retried = c.post("/api/v1/crm/customers", headers=headers, json=body)
    assert failed.status_code >= 500
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
