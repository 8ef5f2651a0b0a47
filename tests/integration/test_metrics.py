"""/metrics over two Granian workers: known traffic, exact counts, whichever worker answers.

Every request goes out on a fresh connection (keep-alive would pin it to one worker), and
every scrape too; the counts must be the same whichever worker reads them.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import httpx
import pytest

from emulator.processes import stop
from tests.metrics_text import scrape
from tests.support import DEMO_PASSWORD, granian_env, start_gateway

CUSTOMER = "/api/v1/crm/customers/{id}"


@pytest.fixture(scope="module")
def gateway2(stack, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("metrics") / "gateway.log"
    env = granian_env(
        stack.environment(),
        ERP_REDIS_KEY_PREFIX=f"metrics-{uuid.uuid4().hex[:8]}:",  # an empty cache and fresh budgets
        ERP_RATE_LIMITS_POLICIES_LOGIN_LIMIT="3",
        ERP_RATE_LIMITS_POLICIES_LOGIN_WINDOW="10m",
        ERP_LOGGING_LEVEL="info",
    )
    with open(log_path, "wb") as log_file:
        process, url = start_gateway(env, workers=2, stdout=log_file, stderr=subprocess.STDOUT)
    yield url, log_path
    stop(process)


def request(url: str, method: str, path: str, **kwargs) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=10) as client:  # a fresh connection: either worker
        return client.request(method, path, **kwargs)


def test_known_traffic_through_two_workers_counts_exactly(stack, gateway2):
    url, log_path = gateway2
    before = scrape(url)  # start_gateway polled /health: count from here
    signed_in = request(url, "POST", "/api/v1/auth/login", json={"email": "viewer@acme.example", "password": DEMO_PASSWORD})
    assert signed_in.status_code == 200
    auth = {"Authorization": "Bearer " + signed_in.json()["data"]["access_token"]}
    listed = request(url, "GET", "/api/v1/crm/customers", headers=auth)
    customer = listed.json()["data"]["items"][0]["id"]

    for _ in range(5):
        assert request(url, "GET", "/health").status_code == 200
    for _ in range(4):  # one miss (a backend call), then hits
        assert request(url, "GET", f"/api/v1/crm/customers/{customer}", headers=auth).status_code == 200
    for n in range(2):  # the backend answers NOT_FOUND; never cached
        assert request(url, "GET", f"/api/v1/crm/customers/missing-{n}", headers=auth).status_code == 404
    for n in range(3):  # no route: one series, not one per path
        assert request(url, "GET", f"/no/such/path/{n}").status_code == 404
    for _ in range(5):  # login allows 3 per email and client IP; 2 refused
        request(url, "POST", "/api/v1/auth/login", json={"email": "nobody@acme.example", "password": "wrong-password"})

    scrapes = [scrape(url) for _ in range(6)]
    for m in scrapes:
        assert m.value("gateway_workers") == 2
        requests = "gateway_http_requests_total"
        assert m.value(requests, route="/health", method="GET", status="200") - before.value(
            requests, route="/health", method="GET", status="200") == 5
        assert m.value(requests, route=CUSTOMER, method="GET", status="200") == 4
        assert m.value(requests, route=CUSTOMER, method="GET", status="404") == 2
        assert m.value(requests, route="(unmatched)", method="GET", status="404") == 3
        assert m.value(requests, route="/api/v1/auth/login", method="POST", status="200") == 1
        assert m.value(requests, route="/api/v1/auth/login", method="POST", status="401") == 3
        assert m.value(requests, route="/api/v1/auth/login", method="POST", status="429") == 2
        assert m.value("gateway_http_request_duration_seconds_count", route=CUSTOMER, method="GET") == 6
        assert m.value("gateway_http_request_duration_seconds_bucket", route=CUSTOMER, method="GET", le="+Inf") == 6
        assert not any("missing-" in s.labels.get("route", "") or "/no/such" in s.labels.get("route", "")
                       for s in m.samples)
        assert m.value("gateway_http_requests_in_flight") == 1  # the scrape itself

        assert m.value("gateway_cache_requests_total", policy="crm_customers", result="hit") == 3
        assert m.value("gateway_cache_requests_total", policy="crm_customers", result="miss") == 4  # the list, the first read, the two missing
        assert m.value("gateway_backend_calls_total", service="crm", method="GetCustomer", code="OK") == 1
        assert m.value("gateway_backend_calls_total", service="crm", method="GetCustomer", code="NOT_FOUND") == 2
        assert m.value("gateway_backend_call_duration_seconds_count", service="crm", method="GetCustomer") == 3
        assert m.value("gateway_backend_calls_total", service="crm", method="ListCustomers", code="OK") == 1
        assert m.has("gateway_backend_breaker_state", service="crm")  # exported while closed, too
        assert m.value("gateway_backend_breaker_state", service="crm") == 0
        assert m.value("gateway_rate_limit_rejections_total", policy="login") == 2
        assert m.value("gateway_jwks_refreshes_total", outcome="success") >= 2  # each worker at start, then polls
        assert m.value("gateway_dependency_up", dependency="valkey") == 1
    # Both workers served the traffic (each access log line names its process).
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert len({line["process.pid"] for line in lines if line.get("log.logger") == "gateway.access"}) == 2
    # The names other features increment are exported from the start.
    assert {"gateway_websocket_connections", "gateway_events_spool_depth"} <= scrapes[0].names()


def test_an_open_breaker_shows_in_metrics(stack):
    """A backend that is down opens the breaker of the worker that calls it."""
    env = granian_env(stack.environment(), ERP_REDIS_KEY_PREFIX=f"metrics-{uuid.uuid4().hex[:8]}:",
                      ERP_GRPC_BREAKER_FAILURE_THRESHOLD="2", ERP_GRPC_BREAKER_COOLDOWN="1h",
                      ERP_GRPC_MAX_RETRY="0", ERP_CACHE_ENABLED="false")
    process, url = start_gateway(env, workers=1)
    finance = stack.stack.backends.servers["finance"]
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            token = client.post("/api/v1/auth/login", json={"email": "admin@acme.example", "password": DEMO_PASSWORD})
            auth = {"Authorization": "Bearer " + token.json()["data"]["access_token"]}
            stack.run(finance.kill())
            try:
                codes = [client.get("/api/v1/finance/accounts", headers=auth).status_code for _ in range(3)]
            finally:
                stack.run(finance.restart())
        assert codes == [503, 503, 503]
        m = scrape(url)
        assert m.value("gateway_backend_breaker_state", service="finance") == 2
        assert m.value("gateway_backend_breaker_opened_total", service="finance") == 1
        assert m.value("gateway_backend_calls_total", service="finance", method="ListAccounts", code="UNAVAILABLE") == 2
        assert m.value("gateway_backend_calls_total", service="finance", method="ListAccounts", code="CIRCUIT_OPEN") == 1
    finally:
        stop(process)


METRICS_TOKEN = "scrape-" + uuid.uuid4().hex  # made here, for this test's gateway only


def test_metrics_behind_a_token_and_a_network_list_refuse_everyone_else(stack):
    env = granian_env(stack.environment(), ERP_OBSERVABILITY_METRICS_TOKEN=METRICS_TOKEN,
                      ERP_OBSERVABILITY_METRICS_ALLOWED_NETWORKS="127.0.0.2/32,10.0.0.0/8")
    process, url = start_gateway(env)

    def scrape_from(address: str, token: str | None) -> httpx.Response:
        """From `address` (another loopback address is another client) to the gateway on 127.0.0.1."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10) as client:
            return client.get(url + "/metrics", headers=headers)

    try:
        allowed = scrape_from("127.0.0.2", METRICS_TOKEN)
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["content-type"].startswith("text/plain")
        assert "gateway_http_requests_total" in allowed.text
        for token in (None, "wrong-" + METRICS_TOKEN, METRICS_TOKEN[:-1]):
            refused = scrape_from("127.0.0.2", token)
            assert refused.status_code == 401, refused.text
            assert refused.json()["code"] == "UNAUTHENTICATED" and refused.headers["WWW-Authenticate"].startswith("Bearer")
            assert "gateway_" not in refused.text
        # The right token from an address outside the list: refused, whatever it carries.
        elsewhere = scrape_from("127.0.0.1", METRICS_TOKEN)
        assert elsewhere.status_code == 403, elsewhere.text
        assert elsewhere.json()["code"] == "FORBIDDEN" and "allowed_networks" in elsewhere.json()["message"]
        assert request(url, "GET", "/health").status_code == 200  # nothing else is affected
    finally:
        stop(process)
