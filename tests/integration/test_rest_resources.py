"""REST resources for CRM, HRM and finance against the real gateway on Granian and the emulated
backends: CRUD round trips, paging, filters, validation, ETags and tenancy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable

import httpx
import pytest


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def created(client: httpx.Client, path: str, body: dict) -> dict:
    answer = client.post(path, json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def all_pages(client: httpx.Client, path: str, **params: Any) -> list[dict]:
    items, token = [], None
    while True:
        answer = client.get(path, params={**params, **({"page_token": token} if token else {})})
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        items += data["items"]
        token = data["next_page_token"]
        if not token:
            return items


@pytest.fixture(scope="module")
def customer(acme) -> dict:
    return created(acme, "/api/v1/crm/customers", {"name": unique("Parent"), "status": "active"})


@pytest.fixture(scope="module")
def invoice(acme, customer) -> dict:
    return created(acme, "/api/v1/finance/invoices", {
        "customer_id": customer["id"], "number": unique("INV"),
        "lines": [{"description": "Audit", "quantity": "2", "unit_price": {"amount": "60.25", "currency": "EUR"}}],
    })


@dataclass
class Case:
    path: str
    create: Callable[[dict, dict], dict]  # (customer, invoice) -> body
    patch: dict | None  # None: the collection is immutable (no PATCH)
    list_params: Callable[[dict], dict] = lambda row: {}  # narrows the list to find the row

    def __repr__(self) -> str:
        return self.path.removeprefix("/api/v1/")


def eur(amount: str) -> dict:
    return {"amount": amount, "currency": "EUR"}


CASES = [
    Case("/api/v1/crm/customers", lambda c, i: {"name": unique("Hooli"), "email": "buy@hooli.example"},
         {"status": "prospect"}, lambda row: {"q": row["name"]}),
    Case("/api/v1/crm/contacts", lambda c, i: {"customer_id": c["id"], "name": unique("Gavin")},
         {"phone": "+1 555 0100"}, lambda row: {"customer_id": row["customer_id"]}),
    Case("/api/v1/crm/deals", lambda c, i: {"customer_id": c["id"], "title": unique("Deal"), "amount": eur("999.90")},
         {"stage": "won", "amount": eur("1000.00")}, lambda row: {"customer_id": row["customer_id"]}),
    Case("/api/v1/hrm/employees", lambda c, i: {"first_name": "Dinesh", "last_name": unique("Chugtai")},
         {"title": "Engineer"}),
    Case("/api/v1/hrm/departments", lambda c, i: {"name": unique("Research")}, {"name": unique("Renamed")}),
    Case("/api/v1/finance/accounts", lambda c, i: {"code": unique("9"), "name": "Petty cash", "type": "asset",
                                                   "balance": eur("10.00")},
         {"name": "Cash box"}),
    Case("/api/v1/finance/invoices", lambda c, i: {"customer_id": c["id"], "number": unique("INV"),
                                                   "total": eur("250.00"), "due_date": "2025-12-31"},
         {"status": "sent"}, lambda row: {"customer_id": row["customer_id"]}),
    Case("/api/v1/finance/payments", lambda c, i: {"invoice_id": i["id"], "amount": eur("120.50")},
         None, lambda row: {"invoice_id": row["invoice_id"]}),
]


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_crud_round_trip(acme, customer, invoice, case):
    body = case.create(customer, invoice)
    answer = acme.post(case.path, json=body)
    assert answer.status_code == 201, answer.text
    row = answer.json()["data"]
    assert {k: row[k] for k in body} == body
    assert row["id"] and row["organization_id"] and row["created_at"]
    item = f"{case.path}/{row['id']}"
    assert answer.headers["Location"] == item

    assert acme.get(item).json()["data"] == row

    if case.patch is None:
        assert acme.patch(item, json={"amount": eur("1.00")}).status_code == 405
        expected = row
    else:
        answer = acme.patch(item, json=case.patch)
        assert answer.status_code == 200, answer.text
        expected = answer.json()["data"]
        assert {k: expected[k] for k in case.patch} == case.patch
        untouched = {k: v for k, v in body.items() if k not in case.patch}
        assert {k: expected[k] for k in untouched} == untouched  # the mask is only the fields sent
        assert acme.get(item).json()["data"] == expected

    listed = all_pages(acme, case.path, page_size=100, **case.list_params(row))
    assert [r for r in listed if r["id"] == row["id"]] == [expected]

    answer = acme.delete(item)
    assert (answer.status_code, answer.json()["data"]) == (200, None)
    assert acme.get(item).status_code == 404
    assert acme.delete(item).status_code == 404
    assert row["id"] not in {r["id"] for r in all_pages(acme, case.path, page_size=100, **case.list_params(row))}


def test_invoice_total_is_computed_from_its_lines(invoice):
    assert invoice["total"] == eur("120.50")
    assert invoice["lines"][0]["amount"] == eur("120.50")


def test_page_size_two_walks_every_page_once(acme):
    everything = acme.get("/api/v1/crm/customers", params={"page_size": 100}).json()["data"]
    seen, tokens, token = [], [], None
    while True:
        params = {"page_size": 2, **({"page_token": token} if token else {})}
        data = acme.get("/api/v1/crm/customers", params=params).json()["data"]
        assert len(data["items"]) <= 2 and data["total_size"] == everything["total_size"]
        seen += [row["id"] for row in data["items"]]
        token = data["next_page_token"]
        if not token:
            break
        tokens.append(token)
    assert seen == [row["id"] for row in everything["items"]]
    assert len(seen) == everything["total_size"] > 4
    assert len(set(tokens)) == len(tokens) and not any(t.isdigit() for t in tokens)  # opaque, not offsets


def test_default_page_size_is_twenty(acme):
    for _ in range(21 - acme.get("/api/v1/crm/customers").json()["data"]["total_size"]):
        created(acme, "/api/v1/crm/customers", {"name": unique("Filler")})
    data = acme.get("/api/v1/crm/customers").json()["data"]
    assert len(data["items"]) == 20 and data["next_page_token"]


def test_filters_narrow_the_list(acme):
    name = unique("Pied Piper")
    created(acme, "/api/v1/crm/customers", {"name": name, "status": "inactive"})
    found = all_pages(acme, "/api/v1/crm/customers", q=name.upper())  # case-insensitive
    assert [row["name"] for row in found] == [name]

    inactive = all_pages(acme, "/api/v1/crm/customers", status="inactive")
    assert name in {row["name"] for row in inactive}
    assert {row["status"] for row in inactive} == {"inactive"}

    won = all_pages(acme, "/api/v1/crm/deals", stage="won")
    assert won and {row["stage"] for row in won} == {"won"}


@pytest.mark.parametrize("params, name", [
    ({"page_size": 0}, "page_size"),
    ({"page_size": 101}, "page_size"),
    ({"page_size": "ten"}, "page_size"),
    ({"status": "customer"}, "status"),
    ({"colour": "red"}, "colour"),
    ({"page_token": "not-a-token"}, "page_token"),
    ({"status": ["lead", "active"]}, "status"),
])
def test_bad_query_parameters_name_the_parameter(acme, params, name):
    answer = acme.get("/api/v1/crm/customers", params=params)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == "VALIDATION_FAILED" and list(body["errors"]) == [name]


@pytest.mark.parametrize("path, body, name", [
    ("/api/v1/crm/customers", {"email": "a@b.example"}, "name"),
    ("/api/v1/crm/customers", {"name": "X", "status": "vip"}, "status"),
    ("/api/v1/crm/customers", {"name": "X", "colour": "red"}, "colour"),
    ("/api/v1/crm/deals", {"customer_id": "c", "title": "T", "amount": 12.5}, "amount"),
    ("/api/v1/crm/deals", {"customer_id": "c", "title": "T", "amount": {"amount": "1e3", "currency": "EUR"}}, "amount"),
    ("/api/v1/crm/deals", {"customer_id": "c", "title": "T", "amount": {"amount": "1", "currency": "euro"}}, "amount"),
    ("/api/v1/finance/invoices", {"customer_id": "c", "number": "N", "due_date": "2025-02-30"}, "due_date"),
    ("/api/v1/finance/invoices", {"customer_id": "c", "number": "N", "lines": [{"description": "x"}]}, "lines"),
    # Rules only the backend knows come back keyed by field too.
    ("/api/v1/crm/contacts", {"customer_id": "no-such-customer", "name": "N"}, "customer_id"),
])
def test_bad_bodies_name_the_field(acme, path, body, name):
    answer = acme.post(path, json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "VALIDATION_FAILED" and list(answer.json()["errors"]) == [name]


def test_money_errors_name_the_inner_field(acme):
    answer = acme.post("/api/v1/crm/deals", json={"customer_id": "c", "title": "T", "amount": {"amount": "1"}})
    assert answer.json()["errors"] == {"amount": ["currency is required"]}


def test_patch_needs_a_field_and_refuses_unknown_ones(acme, customer):
    item = f"/api/v1/crm/customers/{customer['id']}"
    assert acme.patch(item, json={}).json()["errors"] == {"body": ["must contain at least one field to change"]}
    assert list(acme.patch(item, json={"id": "other"}).json()["errors"]) == ["id"]


def test_unique_fields_conflict(acme):
    code = unique("7")
    created(acme, "/api/v1/finance/accounts", {"code": code, "name": "A", "type": "asset", "balance": eur("0")})
    answer = acme.post("/api/v1/finance/accounts", json={"code": code, "name": "B", "type": "asset", "balance": eur("0")})
    assert (answer.status_code, answer.json()["code"]) == (409, "CONFLICT")


class TestETag:
    def test_get_sends_a_strong_etag_and_answers_a_match_with_304(self, acme, customer):
        item = f"/api/v1/crm/customers/{customer['id']}"
        first = acme.get(item)
        etag = first.headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10  # strong: no W/
        assert acme.get(item).headers["ETag"] == etag  # stable while unchanged (cache hit or not)
        assert first.headers["Cache-Control"] == "private, no-cache"  # storable, revalidated
        assert acme.get("/api/v1/crm/customers").headers["Cache-Control"] == "no-store"
        for header in (etag, f'"other", {etag}', f"W/{etag}", "*"):
            answer = acme.get(item, headers={"If-None-Match": header})
            assert (answer.status_code, answer.content) == (304, b""), header
            assert answer.headers["ETag"] == etag
        assert acme.get(item, headers={"If-None-Match": '"something-else"'}).status_code == 200

    def test_a_change_changes_the_etag(self, acme):
        row = created(acme, "/api/v1/crm/customers", {"name": unique("Raviga")})
        item = f"/api/v1/crm/customers/{row['id']}"
        etag = acme.get(item).headers["ETag"]
        assert acme.patch(item, json={"phone": "+1 555 0199"}).status_code == 200
        answer = acme.get(item, headers={"If-None-Match": etag})
        assert answer.status_code == 200 and answer.json()["data"]["phone"] == "+1 555 0199"
        assert answer.headers["ETag"] != etag

    def test_errors_and_lists_carry_no_etag(self, acme):
        assert "ETag" not in acme.get("/api/v1/crm/customers/nope").headers
        assert "ETag" not in acme.get("/api/v1/crm/customers").headers


class TestTenancy:
    def test_another_organization_gets_404_for_every_verb(self, acme, globex, customer):
        item = f"/api/v1/crm/customers/{customer['id']}"
        assert globex.get(item).status_code == 404
        assert globex.patch(item, json={"name": "Stolen"}).status_code == 404
        assert globex.delete(item).status_code == 404
        assert acme.get(item).json()["data"]["name"] == customer["name"]  # untouched

    def test_lists_never_show_another_organizations_rows(self, acme, globex, customer):
        acme_org = customer["organization_id"]
        for path in ("/api/v1/crm/customers", "/api/v1/crm/contacts", "/api/v1/hrm/employees",
                     "/api/v1/finance/invoices"):
            rows = all_pages(globex, path, page_size=100)
            assert rows, path  # Globex has its own seed data
            assert acme_org not in {row["organization_id"] for row in rows}, path
        assert customer["id"] not in {row["id"] for row in all_pages(globex, "/api/v1/crm/customers", page_size=100)}
        assert all_pages(globex, "/api/v1/crm/customers", q=customer["name"]) == []

    def test_a_reference_to_another_organizations_record_is_refused(self, globex, customer):
        answer = globex.post("/api/v1/crm/contacts", json={"customer_id": customer["id"], "name": "Spy"})
        assert answer.status_code == 400 and list(answer.json()["errors"]) == ["customer_id"]


def test_resource_routes_need_a_token(gateway):
    with gateway.client() as anonymous:
        answer = anonymous.get("/api/v1/crm/customers")
    assert (answer.status_code, answer.json()["code"]) == (401, "UNAUTHENTICATED")
