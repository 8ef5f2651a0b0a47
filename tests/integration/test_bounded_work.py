"""Bounded work per request (issue 10, item 5), against the gateway on Granian: a list inside a
record, a record's encoded size and a list page's encoded size each have a limit, answered
with a clear 400 or 413 naming what to change."""

from __future__ import annotations

import uuid

import httpx
import pytest

from emulator.processes import stop
from tests.support import granian_env, start_gateway

RECORD_LIMIT, PAGE_LIMIT = 4096, 8192


@pytest.fixture(scope="module")
def admin(stack):
    env = granian_env(stack.environment(), ERP_LIMITS_MAX_RECORD_BYTES=str(RECORD_LIMIT),
                      ERP_LIMITS_MAX_RESPONSE_BYTES=str(PAGE_LIMIT))
    process, url = start_gateway(env)
    tag = uuid.uuid4().hex[:10]
    with httpx.Client(base_url=url, timeout=10) as anonymous:  # an organization of its own
        signed_up = anonymous.post("/api/v1/auth/register", json={
            "first_name": "Big", "last_name": "Pages", "email": f"big-{tag}@pages-{tag}.example",
            "password": "long-enough-1", "password_confirmation": "long-enough-1",
            "organization_name": f"Pages {tag}", "domain": f"pages-{tag}.example"})
        assert signed_up.status_code == 201, signed_up.text
    token = signed_up.json()["data"]["access_token"]
    with httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client
    stop(process)


@pytest.fixture(scope="module")
def customer_id(admin):
    answer = admin.post("/api/v1/crm/customers", json={"name": "Buyer"})
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]["id"]


def invoice(customer_id: str, lines: int, description: str = "x") -> dict:
    return {"customer_id": customer_id, "number": f"INV-{uuid.uuid4().hex[:10]}",
            "lines": [{"description": description, "quantity": "1", "unit_price": {"amount": "1.00", "currency": "EUR"}}
                      for _ in range(lines)]}


def test_an_invoice_has_at_most_100_lines(admin, customer_id):
    answer = admin.post("/api/v1/finance/invoices", json=invoice(customer_id, 101))
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"]["lines"] == ["must be at most 100 items"]


def test_a_record_over_the_encoded_size_limit_is_413(admin, customer_id):
    answer = admin.post("/api/v1/finance/invoices", json=invoice(customer_id, 20, "d" * 400))
    assert answer.status_code == 413, answer.text
    doc = answer.json()
    assert doc["code"] == "PAYLOAD_TOO_LARGE" and f"the limit is {RECORD_LIMIT}" in doc["errors"]["body"][0]


def test_a_page_over_the_response_limit_is_400_naming_page_size_and_a_smaller_page_is_served(admin, customer_id):
    for _ in range(6):  # ~2.6 KB each: six make a page over the 8 KiB limit
        created = admin.post("/api/v1/finance/invoices", json=invoice(customer_id, 5, "d" * 400))
        assert created.status_code == 201, created.text
    answer = admin.get("/api/v1/finance/invoices", params={"page_size": 100})
    assert answer.status_code == 400, answer.text
    assert "over the 8192 byte limit" in answer.json()["errors"]["page_size"][0]
    small = admin.get("/api/v1/finance/invoices", params={"page_size": 2})
    assert small.status_code == 200 and len(small.json()["data"]["items"]) == 2
