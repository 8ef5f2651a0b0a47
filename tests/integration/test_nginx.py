"""Two gateway instances behind a real nginx (Debian's package) with infra/nginx/erp-gateway.conf:
the REST journeys pass through it, the client's address reaches the gateway through
X-Forwarded-For, and losing an instance loses no idempotent request."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import uuid

import httpx
import pytest

from emulator.ports import free_port, wait_for_http
from emulator.processes import spawn, stop

from tests.journey import run_auth_journey
from tests.conftest import login
from tests.integration.test_cache import bearer
from tests.support import DEMO_PASSWORD, granian_env, start_gateway

ANONYMOUS_LIMIT = 30  # per hour and client address (no refill during a slow test); others stay under it
CONF = pathlib.Path(__file__).resolve().parents[2] / "infra" / "nginx" / "erp-gateway.conf"


def render(upstreams: list[str], port: int, tmp: pathlib.Path) -> pathlib.Path:
    """The shipped server config with loopback upstreams and port, inside a minimal nginx.conf."""
    site = CONF.read_text()
    servers = "".join(f"    server {address} max_fails=2 fail_timeout=5s;\n" for address in upstreams)
    site, count = re.subn(r"(?m)^    server gateway-\d:8080[^\n]*\n", "", site)
    assert count == 2, "the shipped config should list two instances"
    site = site.replace("    least_conn;\n", "    least_conn;\n" + servers)
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    site = site.replace("/var/log/nginx/", f"{tmp}/")
    (tmp / "site.conf").write_text(site)
    main = tmp / "nginx.conf"
    main.write_text(
        f"""
daemon off;
worker_processes 1;
user root;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;  # the site's own access log (erp-gateway.log) is the one under test
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""
    )
    return main


@pytest.fixture(scope="module")
def balanced(stack, tmp_path_factory):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert pathlib.Path(nginx).exists(), "nginx is missing: tests/run installs it (tests/peers/apt.txt)"
    env = granian_env(
        stack.environment(), ERP_SERVER_TRUSTED_PROXIES="127.0.0.1",
        # Budgets of their own: this small anonymous policy must not move the shared Valkey
        # counters of 127.0.0.1 that every other test's gateway reads with its own policy.
        ERP_REDIS_KEY_PREFIX=f"nginx-{uuid.uuid4().hex[:8]}:",
        ERP_RATE_LIMITS_POLICIES_ANONYMOUS_LIMIT=str(ANONYMOUS_LIMIT),
        ERP_RATE_LIMITS_POLICIES_ANONYMOUS_WINDOW="1h",
    )
    instances = [start_gateway(env, workers=1) for _ in range(2)]
    tmp = tmp_path_factory.mktemp("nginx")
    port = free_port()
    main = render([url.removeprefix("http://") for _, url in instances], port, tmp)
    check = subprocess.run([nginx, "-t", "-c", str(main)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proxy = spawn([nginx, "-c", str(main)])
    url = f"http://127.0.0.1:{port}"
    assert wait_for_http(url + "/health", proxy, 10), (tmp / "error.log").read_text()
    yield url, instances, tmp
    stop(proxy)
    for process, _ in instances:
        stop(process)


def test_the_auth_journey_passes_through_nginx(balanced):
    url, _, _ = balanced
    run_auth_journey(lambda: httpx.Client(base_url=url, timeout=10))


def test_crud_through_nginx_reaches_both_instances(balanced):
    url, _, tmp = balanced
    with httpx.Client(base_url=url, timeout=10) as c:
        token = c.post("/api/v1/auth/login", json={"email": "admin@acme.example", "password": DEMO_PASSWORD})
        bearer = {"Authorization": f"Bearer {token.json()['data']['access_token']}"}
        created = c.post("/api/v1/crm/customers", headers=bearer, json={"name": "Via nginx", "email": "nginx@acme.example"})
        assert created.status_code == 201, created.text
        ident = created.json()["data"]["id"]
        for _ in range(6):
            assert c.get(f"/api/v1/crm/customers/{ident}", headers=bearer).status_code == 200
        assert c.patch(f"/api/v1/crm/customers/{ident}", headers=bearer, json={"name": "Renamed"}).status_code == 200
        assert c.delete(f"/api/v1/crm/customers/{ident}", headers=bearer).status_code == 200
        assert c.get(f"/api/v1/crm/customers/{ident}", headers=bearer).status_code == 404
    # nginx spread the requests over both instances.
    assert len(set(re.findall(r"upstream=(\S+)", (tmp / "erp-gateway.log").read_text()))) == 2


def test_the_access_log_keeps_no_query_string(balanced):
    url, _, tmp = balanced
    with httpx.Client(base_url=url, timeout=10) as c:
        c.get("/health?token=secret-in-the-query")
    log = (tmp / "erp-gateway.log").read_text()
    assert "GET /health HTTP/1.1" in log
    assert "secret-in-the-query" not in log


def test_the_client_address_comes_from_x_forwarded_for(balanced):
    """nginx appends its peer to X-Forwarded-For and the gateway trusts nginx: each client
    behind the proxy has its own anonymous budget instead of all sharing nginx's."""
    url, _, _ = balanced
    with httpx.Client(base_url=url, timeout=10) as c:
        first = [
            c.get("/openapi.json", headers={"X-Forwarded-For": "203.0.113.7"}).status_code
            for _ in range(ANONYMOUS_LIMIT + 1)
        ]
        other = c.get("/openapi.json", headers={"X-Forwarded-For": "203.0.113.8"})
    assert first[:ANONYMOUS_LIMIT] == [200] * ANONYMOUS_LIMIT and first[-1] == 429
    assert other.status_code == 200


def test_losing_an_instance_loses_no_read(balanced, stack):
    url, instances, _ = balanced
    with httpx.Client(base_url=url, timeout=10) as c:
        token = c.post("/api/v1/auth/login", json={"email": "viewer@acme.example", "password": DEMO_PASSWORD})
        bearer = {"Authorization": f"Bearer {token.json()['data']['access_token']}"}
        stop(instances[0][0])
        statuses = [c.get("/api/v1/auth/me", headers=bearer).status_code for _ in range(20)]
    assert statuses == [200] * 20


def test_a_websocket_upgrades_through_nginx_and_receives_a_notification(balanced):
    """The upgrade passes nginx (Upgrade/Connection headers, HTTP/1.1 upstream) and a
    notification published through the REST side reaches the socket."""
    import asyncio
    import json

    import websockets

    url, _, _ = balanced
    with httpx.Client(base_url=url, timeout=10) as c:
        viewer = login(c, "viewer@acme.example")

    async def journey() -> dict:
        async with websockets.connect(url.replace("http://", "ws://") + "/ws") as socket:
            await socket.send(json.dumps({"type": "auth", "token": viewer["access_token"]}))
            hello = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert hello["type"] == "connected", hello
            async with httpx.AsyncClient(base_url=url, timeout=10) as c:
                sent = await c.post("/api/v1/notifications", headers=bearer(viewer),
                                    json={"channel": f"notifications:{viewer['user']['id']}", "data": {"n": 1}})
            assert sent.status_code == 202, sent.text
            while True:
                frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if frame["type"] == "message":
                    return frame

    frame = asyncio.run(journey())
    assert frame["data"] == {"n": 1} and frame["user_id"] == viewer["user"]["id"]


def test_a_graphql_dashboard_query_passes_through_nginx(balanced):
    url, _, _ = balanced
    with httpx.Client(base_url=url, timeout=10) as c:
        manager = login(c, "manager@acme.example")
        answer = c.post("/graphql", headers={**bearer(manager), "Accept": "application/graphql-response+json"},
                        json={"query": "{ me { email } employees(first: 3) { nodes { firstName department { name } } } }"})
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["me"]["email"] == "manager@acme.example" and len(data["employees"]["nodes"]) == 3
