"""A per-account budget of failed sign-ins across every client address (issue 9.5).

A gateway of its own that believes X-Forwarded-For from loopback (so each attempt can come
from another address, as from a botnet), with a small budget (5 failures per 15 minutes) and
its own key prefix (the lockouts must not reach other modules' gateways on the shared Valkey).
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from emulator.processes import stop
from tests.support import DEMO_PASSWORD, granian_env, start_gateway

LOGIN = "/api/v1/auth/login"
BUDGET = 5


@pytest.fixture(scope="module")
def gateway(stack, tmp_path_factory):
    log = tmp_path_factory.mktemp("lockout") / "gateway.log"
    env = granian_env(stack.environment(), ERP_SERVER_TRUSTED_PROXIES="127.0.0.1",
                      ERP_SECURITY_LOGIN_FAILURES_LIMIT=str(BUDGET), ERP_SECURITY_LOGIN_FAILURES_WINDOW="15m",
                      ERP_REDIS_KEY_PREFIX=f"lockout-{uuid.uuid4().hex[:8]}:")
    with open(log, "wb") as sink:
        process, url = start_gateway(env, stdout=sink)
    with httpx.Client(base_url=url, timeout=10) as client:
        yield client, log
    stop(process)


def attempt(client: httpx.Client, email: str, password: str, address: str) -> httpx.Response:
    return client.post(LOGIN, json={"email": email, "password": password}, headers={"X-Forwarded-For": address})


def comparable(answer: httpx.Response) -> tuple:
    doc = answer.json()
    doc.pop("request_id")
    kept = {k: v for k, v in answer.headers.items() if k.lower().startswith("ratelimit-limit")}
    return answer.status_code, doc, kept, "retry-after" in answer.headers


def test_failures_from_many_addresses_lock_the_account_alike_whether_it_exists_or_not(gateway):
    client, log = gateway
    real, unknown = "employee@globex.example", f"nobody-{uuid.uuid4().hex[:6]}@globex.example"
    for email in (real, unknown):
        failures = [attempt(client, email, "wrong-password", f"203.0.113.{i}") for i in range(BUDGET)]
        assert [f.status_code for f in failures] == [401] * BUDGET, [f.text for f in failures]
    # From a fresh address, with the right password: the account is locked all the same.
    locked = attempt(client, real, DEMO_PASSWORD, "198.51.100.7")
    assert locked.status_code == 429, locked.text
    assert locked.json()["code"] == "RATE_LIMITED"
    assert int(locked.headers["Retry-After"]) > 60  # the budget refills over the window, not in seconds
    other = attempt(client, unknown, "anything-at-all", "198.51.100.8")
    assert comparable(locked) == comparable(other)  # nothing tells the existing account apart
    # Another account is untouched.
    assert attempt(client, "admin@globex.example", DEMO_PASSWORD, "198.51.100.7").status_code == 200
    # One security event per account locked, with no address in it.
    events = [json.loads(line) for line in log.read_text().splitlines()
              if '"login.account_locked"' in line]
    assert len(events) == 2, events
    assert all(e["gateway.security_event"] == "login.account_locked" and e["gateway.failures"] == BUDGET for e in events)
    assert not any("@" in line.replace('"@timestamp"', "") for line in log.read_text().splitlines()
                   if "security_event" in line)


def test_the_per_address_login_limit_still_applies_first(stack):
    """Unchanged: login's own limit per email and address (here 3 a minute) answers before the
    account's budget is anywhere near spent."""
    env = granian_env(stack.environment(), ERP_RATE_LIMITS_POLICIES_LOGIN_LIMIT="3",
                      ERP_REDIS_KEY_PREFIX=f"lockout-{uuid.uuid4().hex[:8]}:")
    process, url = start_gateway(env)
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            codes = [client.post(LOGIN, json={"email": "viewer@globex.example", "password": "nope"}).status_code
                     for _ in range(5)]
    finally:
        stop(process)
    assert codes == [401, 401, 401, 429, 429]


def graphql_login(client: httpx.Client, email: str, password: str, address: str) -> dict:
    answer = client.post("/graphql", headers={"X-Forwarded-For": address, "Accept": "application/graphql-response+json"},
                         json={"query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
                                        "{ accessToken } }", "variables": {"e": email, "p": password}})
    return answer.json()


def test_graphql_login_spends_and_obeys_the_same_account_budget(gateway):
    """The `login` mutation is no way around the lockout: its failures spend the account's
    budget with REST login's, and a spent budget refuses it before the password is checked."""
    client, _ = gateway
    email = "employee@acme.example"
    for i in range(BUDGET - 2):
        failed = graphql_login(client, email, "wrong-password", f"203.0.113.{100 + i}")
        assert [e["extensions"]["code"] for e in failed["errors"]] == ["UNAUTHENTICATED"], failed
    for i in range(2):
        assert attempt(client, email, "wrong-password", f"203.0.113.{200 + i}").status_code == 401
    locked = graphql_login(client, email, DEMO_PASSWORD, "198.51.100.9")
    assert locked["data"] == {"login": None}
    assert [e["extensions"]["code"] for e in locked["errors"]] == ["RATE_LIMITED"], locked
    assert attempt(client, email, DEMO_PASSWORD, "198.51.100.10").status_code == 429
    # Another account signs in over GraphQL as before.
    fine = graphql_login(client, "manager@acme.example", DEMO_PASSWORD, "198.51.100.9")
    assert fine["data"]["login"]["accessToken"], fine
