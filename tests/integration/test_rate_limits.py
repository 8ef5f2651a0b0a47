"""Rate limits across two real gateway instances sharing one Valkey, and without Valkey.

Budgets use a 10-minute window so that none refills while a test runs; each test starts
from empty budgets (its keys are deleted), and the gateways here use their own key prefix.
"""

from __future__ import annotations


import httpx
import pytest

from emulator.processes import stop
from emulator.valkey import EmbeddedValkey
from tests.support import delete_keys, DEMO_PASSWORD, gateways, granian_env, poll_ready, start_gateway

PREFIX = "rl-test:"
REFRESH = "/api/v1/auth/refresh"
LOGIN = "/api/v1/auth/login"
POLICIES = {
    "ERP_REDIS_KEY_PREFIX": PREFIX,
    "ERP_RATE_LIMITS_POLICIES_ANONYMOUS_LIMIT": "20",
    "ERP_RATE_LIMITS_POLICIES_ANONYMOUS_WINDOW": "10m",
    "ERP_RATE_LIMITS_POLICIES_LOGIN_LIMIT": "10",
    "ERP_RATE_LIMITS_POLICIES_LOGIN_WINDOW": "10m",
    "ERP_RATE_LIMITS_POLICIES_USER_LIMIT": "30",
    "ERP_RATE_LIMITS_POLICIES_USER_WINDOW": "10m",
}


@pytest.fixture(scope="module")
def pair(stack):
    """Instance A believes no proxy; instance B believes X-Forwarded-For from 127.0.0.1."""
    with gateways(granian_env(stack.environment(), **POLICIES),
                  granian_env(stack.environment(), **POLICIES, ERP_SERVER_TRUSTED_PROXIES="127.0.0.1")) as urls:
        yield tuple(urls)


@pytest.fixture(autouse=True)
def empty_budgets(store):
    delete_keys(store, PREFIX + "rl:*")


def refresh(url: str, **headers: str) -> httpx.Response:
    # A fresh connection per request, as unrelated clients would make.
    return httpx.post(url + REFRESH, json={"refresh_token": "not-a-real-token"}, headers=headers, timeout=10)


def assert_rate_limited(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert int(answer.headers["Retry-After"]) >= 1
    doc = answer.json()
    assert doc["success"] is False and doc["code"] == "RATE_LIMITED" and doc["request_id"]
    assert answer.headers["RateLimit-Remaining"] == "0"


def test_two_instances_share_one_budget_and_refuse_exactly_the_excess(pair):
    n, k = 20, 5
    answers = [refresh(pair[i % 2]) for i in range(n + k)]
    statuses = [a.status_code for a in answers]
    assert statuses.count(429) == k, statuses
    assert 429 not in statuses[:n]  # the first n went through (to the backend, which says 401)
    for answer in answers[n:]:
        assert_rate_limited(answer)
    assert {a.headers["RateLimit-Limit"] for a in answers} == {"20"}
    assert [int(a.headers["RateLimit-Remaining"]) for a in answers[:n]] == list(range(n - 1, -1, -1))
    assert all(0 < int(a.headers["RateLimit-Reset"]) <= 600 for a in answers)


def test_signed_in_callers_count_per_user_across_instances(pair):
    token = httpx.post(pair[0] + LOGIN, json={"email": "viewer@acme.example", "password": DEMO_PASSWORD}).json()
    auth = {"Authorization": "Bearer " + token["data"]["access_token"]}
    answers = [httpx.get(pair[i % 2] + "/api/v1/auth/me", headers=auth, timeout=10) for i in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    assert {a.headers["RateLimit-Limit"] for a in answers} == {"30"}
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["29", "28", "27", "26"]


def test_login_is_limited_per_email_and_client_ip(pair):
    url = pair[0]
    wrong = {"email": "manager@acme.example", "password": "wrong-password"}
    tries = [httpx.post(url + LOGIN, json=wrong, timeout=10) for _ in range(10)]
    assert [t.status_code for t in tries] == [401] * 10
    assert tries[0].headers["RateLimit-Limit"] == "10"  # the tighter of login and anonymous
    assert_rate_limited(httpx.post(url + LOGIN, json=wrong, timeout=10))
    # The right password does not help, nor does spelling the address differently.
    same = {"email": "Manager@ACME.example", "password": DEMO_PASSWORD}
    assert_rate_limited(httpx.post(pair[1] + LOGIN, json=same, timeout=10))
    other = httpx.post(url + LOGIN, json={"email": "employee@acme.example", "password": DEMO_PASSWORD}, timeout=10)
    assert other.status_code == 200, other.text


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(pair):
    untrusting, trusting = pair
    for _ in range(20):
        refresh(untrusting)
    # A client that makes up an address does not get a fresh budget...
    assert_rate_limited(refresh(untrusting, **{"X-Forwarded-For": "198.51.100.7"}))
    # ...but behind a proxy we trust, the address it reports is the client's.
    behind_proxy = refresh(trusting, **{"X-Forwarded-For": "6.6.6.6, 198.51.100.7"})
    assert behind_proxy.status_code != 429
    assert behind_proxy.headers["RateLimit-Remaining"] == "19"
    assert_rate_limited(refresh(trusting))  # the proxy's own address is still spent


def test_health_and_readiness_are_never_limited(pair):
    for _ in range(20):
        refresh(pair[0])
    assert_rate_limited(refresh(pair[0]))
    for path in ("/health", "/ready") * 3:
        answer = httpx.get(pair[0] + path, timeout=10)
        assert answer.status_code == 200, answer.text
        assert not any(h.lower().startswith("ratelimit") for h in answer.headers), answer.headers


# ------------------------------------------------------------------ Valkey down


@pytest.fixture(scope="module")
def own_valkey(stack):
    """A gateway on its own valkey-server, which the test stops and starts again."""
    server = EmbeddedValkey().start()
    env = granian_env(stack.environment(), ERP_REDIS_PORT=str(server.port), ERP_GRPC_HEALTH_INTERVAL="200ms",
                      ERP_RATE_LIMITS_POLICIES_ANONYMOUS_LIMIT="5", ERP_RATE_LIMITS_POLICIES_ANONYMOUS_WINDOW="10m")
    try:
        process, url = start_gateway(env)
    except Exception:
        server.stop()
        raise
    yield server, url
    stop(process)
    server.stop()


def ready_report(url: str, want) -> dict:
    return poll_ready(url, lambda a: want(a.json()["data"])).json()["data"]


def test_with_valkey_down_a_local_limiter_takes_over_and_ready_says_degraded(own_valkey):
    server, url = own_valkey
    assert refresh(url).headers["RateLimit-Remaining"] == "4"
    server.stop()
    try:
        answers = [refresh(url) for _ in range(7)]
        assert [a.status_code == 429 for a in answers] == [False] * 5 + [True] * 2
        assert_rate_limited(answers[-1])
        report = ready_report(url, lambda r: r["dependencies"]["valkey"]["status"] == "down")
        assert report["status"] == "degraded"
        assert report["dependencies"]["valkey"]["rate_limits"] == "local"
    finally:
        server.start()
    # The request path's breaker probes Valkey by itself once a cool-down (1 s) has passed.
    ready_report(url, lambda r: r["dependencies"]["valkey"]["breaker"] == "closed")
    back = refresh(url)
    assert back.headers["RateLimit-Remaining"] == "4"  # counted in the (emptied) Valkey again
    report = ready_report(url, lambda r: r["status"] == "ready")
    assert report["dependencies"]["valkey"]["rate_limits"] == "shared"
