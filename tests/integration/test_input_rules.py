"""Inputs a real backend would refuse (issue 10, item 8), against the gateway on Granian and the
emulated backends: exact patterns over ASCII digits, no control or bidi-override characters,
references checked for the caller's organization and existence, and the business rules.
Each answer is a 400 in the envelope naming the field, like the existing reference checks."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.test_rest_resources import created, unique

REFUSED_TEXT = "must not contain control or bidirectional-override characters"


@pytest.fixture(scope="module")
def customer(acme):
    return created(acme, "/api/v1/crm/customers", {"name": unique("Rules")})


@pytest.fixture(scope="module")
def invoice(acme, customer):
    return created(acme, "/api/v1/finance/invoices", {
        "customer_id": customer["id"], "number": unique("INV"), "total": {"amount": "100.00", "currency": "EUR"}})


def refused(answer, field: str, contains: str = "") -> None:
    assert answer.status_code == 400, answer.text
    doc = answer.json()
    assert doc["success"] is False and doc["code"] == "VALIDATION_FAILED", doc
    assert field in doc["errors"], doc
    assert contains in " ".join(doc["errors"][field]), doc


@pytest.mark.parametrize("amount", ["120.50\n", "\u0661\u0662\u0660", "12\u0660.5", "120.50 ", "+1", "1e3"])
def test_decimals_are_exact_ascii_digits(acme, customer, amount):
    answer = acme.post("/api/v1/crm/deals", json={"customer_id": customer["id"], "title": "D",
                                                  "amount": {"amount": amount, "currency": "EUR"}})
    refused(answer, "amount")


@pytest.mark.parametrize("currency", ["EUR\n", "eur", "EURO"])
def test_currencies_are_exactly_three_capitals(acme, customer, currency):
    answer = acme.post("/api/v1/crm/deals", json={"customer_id": customer["id"], "title": "D",
                                                  "amount": {"amount": "1.00", "currency": currency}})
    refused(answer, "amount")


@pytest.mark.parametrize("email", ["a@b.example\n", "a\n@b.example", "a\x00@b.example"])
def test_emails_with_newlines_or_nul_are_refused(acme, email):
    refused(acme.post("/api/v1/crm/customers", json={"name": "N", "email": email}), "email")


@pytest.mark.parametrize("name", ["Eve\x00", "Eve\u202egnp.exe", "Eve\u2066x", "Eve\x1b[31m", "Eve\x7f", "Eve\x85"])
def test_control_and_bidi_override_characters_are_refused_in_text(acme, name):
    refused(acme.post("/api/v1/crm/customers", json={"name": name}), "name", REFUSED_TEXT)


def test_a_registration_name_with_a_bidi_override_is_refused(http):
    tag = uuid.uuid4().hex[:8]
    answer = http.post("/api/v1/auth/register", json={
        "first_name": "Ad\u202ea", "last_name": "L", "email": f"a-{tag}@x-{tag}.example", "password": "long-enough-1",
        "password_confirmation": "long-enough-1", "organization_name": "O", "domain": f"x-{tag}.example"})
    refused(answer, "first_name", REFUSED_TEXT)


def test_integer_query_parameters_take_ascii_digits_only(acme):
    refused(acme.get("/api/v1/crm/customers", params={"page_size": "\u0661\u0660"}), "page_size")
    refused(acme.get("/api/v1/crm/customers", params={"page_size": "10\n"}), "page_size")


def test_an_invoice_for_another_organizations_or_a_missing_customer_is_refused(acme, globex, customer):
    for customer_id in (customer["id"], str(uuid.uuid4())):
        answer = globex.post("/api/v1/finance/invoices", json={
            "customer_id": customer_id, "number": unique("INV"), "total": {"amount": "1.00", "currency": "EUR"}})
        refused(answer, "customer_id", "no customer")


def test_an_employee_linked_to_another_organizations_or_a_missing_user_is_refused(acme, globex, gateway):
    with gateway.client() as anonymous:
        from tests.conftest import login
        globex_user = login(anonymous, "employee@globex.example")["user"]["id"]
    for user_id in (globex_user, str(uuid.uuid4())):
        answer = acme.post("/api/v1/hrm/employees", json={"first_name": "A", "last_name": "B", "user_id": user_id})
        refused(answer, "user_id", "no user")


def test_a_customer_owned_by_another_organizations_user_is_refused(acme, gateway):
    with gateway.client() as anonymous:
        from tests.conftest import login
        globex_user = login(anonymous, "employee@globex.example")["user"]["id"]
    refused(acme.post("/api/v1/crm/customers", json={"name": "C", "owner_id": globex_user}), "owner_id", "no user")


@pytest.mark.parametrize("amount", ["-10.00", "0", "0.00"])
def test_a_payment_that_is_not_positive_is_refused(acme, invoice, amount):
    answer = acme.post("/api/v1/finance/payments", json={"invoice_id": invoice["id"],
                                                          "amount": {"amount": amount, "currency": "EUR"}})
    refused(answer, "amount.amount", "greater than zero")


def test_a_payment_in_another_currency_than_its_invoice_is_refused(acme, invoice):
    answer = acme.post("/api/v1/finance/payments", json={"invoice_id": invoice["id"],
                                                          "amount": {"amount": "10.00", "currency": "USD"}})
    refused(answer, "amount.currency", "EUR")
    ok = acme.post("/api/v1/finance/payments", json={"invoice_id": invoice["id"],
                                                      "amount": {"amount": "10.00", "currency": "EUR"}})
    assert ok.status_code == 201, ok.text


def test_an_employee_cannot_be_their_own_manager(acme):
    employee = created(acme, "/api/v1/hrm/employees", {"first_name": "Self", "last_name": unique("Managed")})
    answer = acme.patch(f"/api/v1/hrm/employees/{employee['id']}", json={"manager_id": employee["id"]})
    refused(answer, "manager_id", "themself")


def test_a_negative_deal_amount_is_refused(acme, customer):
    answer = acme.post("/api/v1/crm/deals", json={"customer_id": customer["id"], "title": "D",
                                                  "amount": {"amount": "-5.00", "currency": "EUR"}})
    refused(answer, "amount.amount", "negative")
