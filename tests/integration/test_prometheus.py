"""A real Prometheus (Debian's `prometheus`, tests/peers/apt.txt) scrapes a 2-worker gateway:
the counts read back with PromQL are the traffic sent; the alert rules in infra/ pass
`promtool check rules` and their unit tests; every query of the Grafana dashboard in infra/
answers without error and with data."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from emulator.ports import free_port, wait_for_http
from emulator.processes import stop
from tests.support import DEMO_PASSWORD, granian_env, start_gateway

INFRA = Path(__file__).resolve().parents[2] / "infra"
RULES = INFRA / "prometheus" / "alerts.yml"
DASHBOARD = INFRA / "grafana" / "erp-gateway-dashboard.json"


def test_alert_rules_check_and_pass_their_unit_tests():
    checked = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = subprocess.run(["promtool", "test", "rules", "alerts.test.yml"], cwd=RULES.parent,
                            capture_output=True, text=True, timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_example_scrape_config_is_valid():
    checked = subprocess.run(["promtool", "check", "config", str(INFRA / "prometheus" / "prometheus.yml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture(scope="module")
def scraped(stack, tmp_path_factory):
    """(gateway url, Prometheus url): Prometheus scrapes the gateway every second."""
    env = granian_env(stack.environment(), ERP_REDIS_KEY_PREFIX=f"prom-{uuid.uuid4().hex[:8]}:",
                      ERP_RATE_LIMITS_POLICIES_LOGIN_LIMIT="2", ERP_RATE_LIMITS_POLICIES_LOGIN_WINDOW="10m")
    gateway, url = start_gateway(env, workers=2)
    work = tmp_path_factory.mktemp("prometheus")
    (work / "prometheus.yml").write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "erp-gateway", "static_configs": [{"targets": [url.removeprefix("http://")]}]}],
    }))
    port = free_port()
    prometheus = subprocess.Popen(
        ["prometheus", f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=open(work / "prometheus.log", "wb"),
    )
    prom = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_http(prom + "/-/ready", prometheus, 60), (work / "prometheus.log").read_text()[-3000:]
        yield url, prom
    finally:
        stop(prometheus)
        stop(gateway)


def query(prom: str, expr: str) -> list[dict]:
    answer = httpx.get(prom + "/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def value(prom: str, expr: str) -> float | None:
    result = query(prom, expr)
    return float(result[0]["value"][1]) if result else None


def poll(prom: str, expr: str, expected: float, timeout: float = 30) -> float | None:
    """Wait until `expr` (a single value) reads `expected`: Prometheus scrapes once a second."""
    deadline = time.monotonic() + timeout
    while True:
        got = value(prom, expr)
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.25)


def request(url: str, method: str, path: str, **kwargs) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=10) as client:  # a fresh connection: either worker
        return client.request(method, path, **kwargs)


@pytest.fixture(scope="module")
def traffic(scraped):
    url, prom = scraped
    signed_in = request(url, "POST", "/api/v1/auth/login", json={"email": "viewer@acme.example", "password": DEMO_PASSWORD})
    auth = {"Authorization": "Bearer " + signed_in.json()["data"]["access_token"]}
    customer = request(url, "GET", "/api/v1/crm/customers", headers=auth).json()["data"]["items"][0]["id"]
    for _ in range(7):
        assert request(url, "GET", f"/api/v1/crm/customers/{customer}", headers=auth).status_code == 200
    for n in range(3):
        assert request(url, "GET", f"/api/v1/crm/customers/gone-{n}", headers=auth).status_code == 404
    for _ in range(4):  # 2 allowed, 2 refused
        request(url, "POST", "/api/v1/auth/login", json={"email": "nobody@acme.example", "password": "not-the-one"})
    return url, prom


def test_prometheus_reads_the_counts_of_both_workers(traffic):
    _, prom = traffic
    item = 'route="/api/v1/crm/customers/{id}",method="GET"'
    assert poll(prom, f'sum(gateway_http_requests_total{{{item},status="200"}})', 7) == 7
    assert poll(prom, f'sum(gateway_http_requests_total{{{item},status="404"}})', 3) == 3
    assert poll(prom, f"sum(gateway_http_request_duration_seconds_count{{{item}}})", 10) == 10
    assert poll(prom, 'sum(gateway_http_requests_total{route="/api/v1/auth/login",status="429"})', 2) == 2
    assert poll(prom, 'sum(gateway_rate_limit_rejections_total{policy="login"})', 2) == 2
    assert poll(prom, 'sum(gateway_cache_requests_total{policy="crm_customers",result="hit"})', 6) == 6
    assert poll(prom, 'sum(gateway_backend_calls_total{service="crm",method="GetCustomer",code="NOT_FOUND"})', 3) == 3
    assert poll(prom, "sum(gateway_workers)", 2) == 2
    assert poll(prom, 'up{job="erp-gateway"}', 1) == 1


def test_the_alert_rules_load_and_evaluate(traffic):
    _, prom = traffic
    deadline = time.monotonic() + 30
    while True:
        groups = httpx.get(prom + "/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if rules and all(r.get("lastEvaluation", "").startswith("20") and r["health"] == "ok" for r in rules):
            break
        assert time.monotonic() < deadline, rules
        time.sleep(0.25)
    assert {r["name"] for r in rules} == {"GatewayHighErrorRatio", "GatewayHighLatencyP99", "GatewayBreakerOpen",
                                         "GatewayEventSpoolFilling", "GatewayValkeyDown", "GatewayDown"}
    firing = [r["name"] for r in rules if r["state"] != "inactive"]
    assert firing == []  # a healthy gateway raises nothing


def dashboard_queries() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in doc["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_has_queries():
    queries = dashboard_queries()
    assert len(queries) >= 20
    assert all("$" not in expr.replace("$__rate_interval", "") for _, expr in queries)  # only Grafana's own variable


def test_every_dashboard_query_answers_with_data(traffic):
    _, prom = traffic
    # Grafana puts at least 4 scrape intervals into $__rate_interval; the traffic was sent within the last minute.
    poll(prom, 'sum(gateway_http_requests_total{route="/api/v1/crm/customers/{id}",status="200"})', 7)
    time.sleep(3)  # a few more scrapes, so that every rate() has two samples after the traffic
    empty = []
    for title, expr in dashboard_queries():
        if not query(prom, expr.replace("$__rate_interval", "1m")):
            empty.append(f"{title}: {expr}")
    assert not empty, "\n".join(empty)
