"""No amplification and no enumeration (issue 10, items 3 and 4), against the gateway on Granian.

Every answer to an anonymous address spends its budget, 400s, 401s and 404s included; an
error body lists at most 20 fields and then a count; registration answers a taken email and
a taken domain alike and has its own budgets per address and per domain. Each test calls from
its own loopback address (another address is another client), with budgets of its own key
prefix emptied first.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from emulator.processes import stop
from tests.support import delete_keys, granian_env, start_gateway

PREFIX = "abuse-rl:"
LIMITS = {
    "ERP_REDIS_KEY_PREFIX": PREFIX,
    "ERP_RATE_LIMITS_POLICIES_ANONYMOUS_LIMIT": "20",
    "ERP_RATE_LIMITS_POLICIES_ANONYMOUS_WINDOW": "10m",
    "ERP_RATE_LIMITS_POLICIES_REGISTER_LIMIT": "3",
    "ERP_RATE_LIMITS_POLICIES_REGISTER_WINDOW": "10m",
    "ERP_RATE_LIMITS_POLICIES_REGISTER_DOMAIN_LIMIT": "2",
    "ERP_RATE_LIMITS_POLICIES_REGISTER_DOMAIN_WINDOW": "10m",
}
LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"


@pytest.fixture(scope="module")
def url(stack):
    process, url = start_gateway(granian_env(stack.environment(), **LIMITS))
    yield url
    stop(process)


@pytest.fixture(autouse=True)
def empty_budgets(store):
    delete_keys(store, PREFIX + "rl:*")


def client_at(url: str, address: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=10, transport=httpx.HTTPTransport(local_address=address))


def registration(email: str | None = None, domain: str | None = None) -> dict:
    tag = uuid.uuid4().hex[:10]
    return {"first_name": "Ada", "last_name": "L", "email": email or f"ada-{tag}@mail-{tag}.example",
            "password": "long-enough-1", "password_confirmation": "long-enough-1",
            "organization_name": f"Org {tag}", "domain": domain or f"org-{tag}.example"}


def test_malformed_logins_spend_the_anonymous_budget(url):
    with client_at(url, "127.0.0.11") as c:
        statuses = [c.post(LOGIN, json={"nope": 1}).status_code for _ in range(20)]
        assert statuses == [400] * 20
        refused = c.post(LOGIN, json={"nope": 1})
        assert refused.status_code == 429 and refused.json()["code"] == "RATE_LIMITED"
        assert int(refused.headers["Retry-After"]) >= 1


def test_unknown_routes_and_bad_tokens_spend_it_too(url):
    with client_at(url, "127.0.0.12") as c:
        assert [c.get("/api/v1/nowhere").status_code for _ in range(10)] == [404] * 10
        bad = {"Authorization": "Bearer not.a.token"}
        assert [c.get("/api/v1/auth/me", headers=bad).status_code for _ in range(10)] == [401] * 10
        assert c.get("/api/v1/nowhere").status_code == 429
        assert c.get("/api/v1/auth/me", headers=bad).status_code == 429
        assert c.post(LOGIN, json={}).status_code == 429
    with client_at(url, "127.0.0.13") as other:  # another address has its own budget
        assert other.get("/api/v1/nowhere").status_code == 404


def test_an_error_body_lists_twenty_fields_and_then_a_count(url):
    keys = 60_000
    body = {f"k{i:05d}": 1 for i in range(keys)}
    with client_at(url, "127.0.0.14") as c:
        answer = c.post(LOGIN, json=body)
    assert answer.status_code == 400, answer.text[:300]
    assert len(answer.content) < 4096, len(answer.content)
    errors = answer.json()["errors"]
    assert len(errors) == 21 and list(errors)[:20] == [f"k{i:05d}" for i in range(20)]
    # 60,000 unknown keys and the two missing fields, less the 20 listed
    assert errors["_more"] == [f"{keys + 2 - 20} more fields with problems not listed"]


def test_a_long_field_name_is_cut_in_the_error_body(url):
    with client_at(url, "127.0.0.14") as c:
        answer = c.post(LOGIN, json={"x" * 10_000: 1, "email": "a@b.example", "password": "p"})
    assert answer.status_code == 400
    (name,) = answer.json()["errors"]
    assert len(name) <= 100 and name.startswith("xxx")  # not the 10,000 characters sent


def test_register_answers_a_taken_email_and_a_taken_domain_alike(url):
    with client_at(url, "127.0.0.15") as c:
        first = registration()
        assert c.post(REGISTER, json=first).status_code == 201
    answers = []
    for address, body in (("127.0.0.16", registration(email=first["email"])),
                          ("127.0.0.17", registration(domain=first["domain"]))):
        with client_at(url, address) as c:
            answers.append(c.post(REGISTER, json=body))
    docs = []
    for answer in answers:
        assert answer.status_code == 409, answer.text
        doc = answer.json()
        doc.pop("request_id")
        docs.append(doc)
    assert docs[0] == docs[1]
    assert docs[0]["code"] == "CONFLICT" and set(docs[0]["errors"]) == {"email", "domain"}


def test_register_has_a_budget_per_domain_whatever_the_address(url):
    domain = f"target-{uuid.uuid4().hex[:8]}.example"
    statuses = []
    for address in ("127.0.0.21", "127.0.0.22", "127.0.0.23"):
        with client_at(url, address) as c:
            statuses.append(c.post(REGISTER, json=registration(domain=domain)).status_code)
    assert statuses == [201, 409, 429]


def test_register_has_a_budget_per_address(url):
    with client_at(url, "127.0.0.24") as c:
        statuses = [c.post(REGISTER, json=registration()).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
