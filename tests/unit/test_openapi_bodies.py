"""Schema features the REST resources and /openapi.json rely on: nested objects (money),
date and currency formats, and query parameters parsed from text."""

from __future__ import annotations

import pytest

from runtime.errors import ValidationFailed
from runtime.rest import MONEY, PAGING
from runtime.schema import Body, Field


def errors_of(body: Body, data, *, query: bool = False) -> dict:
    with pytest.raises(ValidationFailed) as caught:
        body.validate_query(data) if query else body.validate(data)
    return caught.value.errors


PRICE = Body("Price", {"price": MONEY, "on": Field(str, required=False, format="date")})


def test_money_is_a_nested_object_checked_field_by_field():
    assert PRICE.validate({"price": {"amount": "120.50", "currency": "EUR"}}) == {
        "price": {"amount": "120.50", "currency": "EUR"}}
    assert errors_of(PRICE, {"price": 120.5}) == {"price": ["must be an object"]}
    assert errors_of(PRICE, {"price": {"amount": "1.5e3", "currency": "eur", "rate": 1}}) == {"price": [
        'rate is not a recognised field; amount must be a decimal number as a string, such as "120.50"; '
        "currency must be a three-letter ISO 4217 currency code such as EUR"]}


@pytest.mark.parametrize("value", ["2025-02-30", "2025-1-01", "01/02/2025", "2025-01-01T00:00:00"])
def test_dates_must_be_real_calendar_days(value):
    assert errors_of(PRICE, {"price": {"amount": "1", "currency": "EUR"}, "on": value}) == {
        "on": ["must be a date as YYYY-MM-DD"]}


def test_nested_json_schema():
    schema = PRICE.json_schema()["properties"]
    assert schema["on"] == {"type": "string", "format": "date"}
    price = schema["price"]
    assert price["type"] == "object" and price["required"] == ["amount", "currency"]
    assert price["properties"]["currency"]["pattern"] == "^[A-Z]{3}$" and price["additionalProperties"] is False


LIST = Body("ListQuery", {**PAGING, "active": Field(bool, required=False)})


def test_query_parameters_are_parsed_from_text():
    assert LIST.validate_query({"page_size": "5", "active": "true"}) == {"page_size": 5, "active": True}
    assert LIST.validate_query({}) == {"page_size": 20}


@pytest.mark.parametrize("params, problem", [
    ({"page_size": "0"}, {"page_size": ["must be at least 1"]}),
    ({"page_size": "1.5"}, {"page_size": ["must be an integer"]}),
    ({"page_size": ["1", "2"]}, {"page_size": ["must be an integer"]}),
    ({"active": "yes"}, {"active": ["must be a boolean"]}),
    ({"sort": "name"}, {"sort": ["is not a recognised field"]}),
])
def test_bad_query_parameters_are_named(params, problem):
    assert errors_of(LIST, params, query=True) == problem
