"""HTTP semantics on the real gateway on Granian: HEAD wherever GET is, OPTIONS with the path's
Allow, CORS preflights with only the path's methods, `Expect: 100-continue` answered with the
413 before the body is sent, path ids within their limit, one timestamp format."""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

import pytest

from runtime.endpoint import discover
from runtime.methods import allowed_methods
from tests.conftest import login

ORIGIN = "http://localhost:3000"  # allowed by the default `cors:` configuration
# Headers that differ between two answers to the same request by design.
PER_ANSWER = {"date", "x-request-id", "ratelimit-remaining", "ratelimit-reset", "x-cache"}
ROUTES = discover()
PATHS = sorted({r.path for r in ROUTES})


@pytest.fixture(scope="module")
def admin(gateway):
    """super_admin: every permission, so every GET answers 200."""
    with gateway.client() as anonymous:
        token = login(anonymous, "super-admin@acme.example")["access_token"]
    with gateway.client(headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def _concrete(admin, path: str) -> str:
    """An item path with a real id from its collection."""
    if path == "/graphql":
        return "/graphql?query=%7B__typename%7D"  # a query: GET /graphql without one is a 400
    if "{id}" not in path:
        return path
    items = admin.get(path.removesuffix("/{id}")).json()["data"]["items"]
    assert items, f"no seed record for {path}"
    return path.replace("{id}", items[0]["id"])


# /debug/pprof/* is off on the shared gateway (tests/integration/test_profiling.py covers it);
# /metrics changes between two requests (it counts them) and /ready reports latencies and ages,
# so only their length may differ.
# GraphiQL's files are served only when graphql.graphiql is on (tests/e2e/test_graphiql_browser.py).
VARYING = {"/metrics", "/ready"}


@pytest.mark.parametrize("path", [r.path for r in ROUTES
                                  if r.method == "GET" and not r.path.startswith("/debug/") and "{name}" not in r.path])
def test_head_answers_with_the_headers_of_get_and_no_body(admin, path):
    url = _concrete(admin, path)
    get, head = admin.get(url), admin.head(url)
    assert get.status_code == head.status_code == 200, (get.text, head.text)
    assert head.content == b""
    varying = PER_ANSWER | ({"content-length"} if path in VARYING else set())
    same = lambda answer: {k: v for k, v in answer.headers.items() if k not in varying}  # noqa: E731
    assert same(head) == same(get)
    if path not in VARYING:
        assert int(head.headers["content-length"]) == len(get.content) > 0


def test_head_of_health_and_ready_for_probes(http):
    for path in ("/health", "/ready"):
        answer = http.head(path)
        assert answer.status_code == 200 and answer.content == b""


def test_head_is_authenticated_like_get(http):
    answer = http.head("/api/v1/auth/me")
    assert answer.status_code == 401 and answer.content == b""
    assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize("path", PATHS)
def test_options_answers_204_with_the_paths_allow(http, path):
    methods = allowed_methods([r.method for r in ROUTES if r.path == path])
    url = path.replace("{id}", "any-id")
    answer = http.options(url)
    assert answer.status_code == 204 and answer.content == b""
    assert answer.headers["allow"].split(", ") == methods
    # A method the path does not have: 405 with the same Allow.
    missing = next(m for m in ("PUT", "DELETE", "POST") if m not in methods)
    refused = http.request(missing, url)
    assert refused.status_code == 405 and refused.json()["code"] == "METHOD_NOT_ALLOWED"
    assert refused.headers["allow"] == answer.headers["allow"]


@pytest.mark.parametrize("path", PATHS)
def test_a_preflight_lists_only_the_paths_methods(http, path):
    methods = allowed_methods([r.method for r in ROUTES if r.path == path])
    answer = http.options(path.replace("{id}", "any-id"), headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": methods[0], "Access-Control-Request-Headers": "authorization"})
    assert answer.status_code == 204, answer.text
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert answer.headers["access-control-allow-methods"].split(", ") == methods
    assert "allow" not in answer.headers


def _expect_continue(url: str, path: str, length: int, headers: str = "") -> tuple[bytes, bool]:
    """Send the headers of a POST with `Expect: 100-continue`, then behave as curl does: send the
    body only after a 100. Returns (the final answer's head, whether the body was sent)."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {length}\r\nExpect: 100-continue\r\n{headers}\r\n").encode())
        answer, sent = b"", False
        while True:
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(65536)  # a reset here (a broken pipe below) fails the test
                assert chunk, "connection closed before an answer"
                answer += chunk
            head, _, answer = answer.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 100"):
                return head, sent
            body = b'{"refresh_token": "' + b"x" * (length - 21) + b'"}'
            sock.sendall(body)
            sent = True


def test_expect_100_continue_over_the_limit_gets_its_413_without_the_body_200_times(gateway):
    # refresh takes at most 4 KiB (max_body_bytes=4096).
    for _ in range(200):
        head, sent = _expect_continue(gateway.url, "/api/v1/auth/refresh", 4097)
        assert head.startswith(b"HTTP/1.1 413 "), head
        assert not sent  # never told to go ahead, so never uploaded into a closing connection


def test_expect_100_continue_within_the_limit_is_told_to_continue(gateway):
    head, sent = _expect_continue(gateway.url, "/api/v1/auth/refresh", 100)
    assert sent and head.startswith(b"HTTP/1.1 401 "), head  # read, validated, refused as unknown


def test_expect_100_continue_refused_before_the_body_on_a_signed_in_route(gateway):
    head, sent = _expect_continue(gateway.url, "/api/v1/crm/customers", 50_000_000)
    assert head.startswith(b"HTTP/1.1 401 ") and not sent, head


def test_an_over_long_id_is_a_400_that_does_not_echo_it(admin):
    long_id = "x" * 65
    answer = admin.get(f"/api/v1/crm/customers/{long_id}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"] == {"id": ["must be at most 64 characters"]}
    assert long_id not in answer.text
    assert admin.get(f"/api/v1/crm/customers/{'x' * 64}").status_code == 404  # at the limit: looked up
    for method in ("PATCH", "DELETE"):
        refused = admin.request(method, f"/api/v1/crm/customers/{long_id}", json={"name": "n"})
        assert refused.status_code == 400 and long_id not in refused.text


def test_unknown_routes_do_not_echo_unbounded_paths(http):
    path = "/" + "a" * 5_000  # under the 8 KiB target limit (a longer one is a 414)
    answer = http.get(path)
    assert answer.status_code == 404 and len(answer.content) < 400
    assert http.request("PUT", "/health?" + "b" * 5000).status_code == 405


RFC3339_MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def test_every_timestamp_has_one_format_and_precision(admin):
    user = admin.get("/api/v1/auth/me").json()["data"]
    created = admin.post("/api/v1/crm/customers", json={"name": "Timestamps Ltd"}).json()["data"]
    stamps = [user["created_at"], user["updated_at"], created["created_at"], created["updated_at"]]
    payments = admin.get("/api/v1/finance/payments").json()["data"]["items"]
    stamps += [p["paid_at"] for p in payments]
    assert payments and all(RFC3339_MILLIS.match(s) for s in stamps), stamps
    assert created["created_at"] == created["updated_at"]  # stored at the precision shown


def test_no_answer_echoes_unbounded_input(admin, http):
    name = "k" * 5000
    for answer in (admin.get("/api/v1/crm/customers", params={name: "1"}),
                   admin.post("/api/v1/crm/customers", json={"name": "n", name: 1})):
        assert answer.status_code == 400 and name not in answer.text and len(answer.content) < 600, answer.text
        assert any(key.startswith("k" * 64) for key in answer.json()["errors"])  # still named
    asked = "x-" + "h" * 5000
    preflight = http.options("/api/v1/auth/me", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": asked})
    assert preflight.status_code == 204 and asked not in str(preflight.headers)
