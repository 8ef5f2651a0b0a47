from __future__ import annotations

import pytest

from runtime.errors import ValidationFailed
from runtime.schema import EMAIL, Body, Field, same_as, text

BODY = Body(
    "Thing",
    {
        "name": text(2, 5),
        "email": EMAIL,
        "count": Field(int, required=False, minimum=1, maximum=10, default=3),
        "kind": Field(str, required=False, choices=("a", "b")),
        "tags": Field(list, required=False, max_length=2, items=Field(str, max_length=3)),
        "again": Field(str, required=False),
    },
    checks=(same_as("again", "name", "must match name"),),
)


def errors_of(data) -> dict:
    with pytest.raises(ValidationFailed) as caught:
        BODY.validate(data)
    return caught.value.errors


def test_valid_body_gets_defaults():
    assert BODY.validate({"name": "abc", "email": "a@b.example"}) == {"name": "abc", "email": "a@b.example", "count": 3}


@pytest.mark.parametrize(
    "data, field, problem",
    [
        ({"email": "a@b.example"}, "name", "is required"),
        ({"name": None, "email": "a@b.example"}, "name", "is required"),
        ({"name": "a", "email": "a@b.example"}, "name", "must be at least 2 characters"),
        ({"name": "abcdef", "email": "a@b.example"}, "name", "must be at most 5 characters"),
        ({"name": 12, "email": "a@b.example"}, "name", "must be a string"),
        ({"name": "abc", "email": "nope"}, "email", "must be a valid email address"),
        ({"name": "abc", "email": "a@b.example", "count": True}, "count", "must be an integer"),
        ({"name": "abc", "email": "a@b.example", "count": 1.5}, "count", "must be an integer"),
        ({"name": "abc", "email": "a@b.example", "count": 0}, "count", "must be at least 1"),
        ({"name": "abc", "email": "a@b.example", "count": 11}, "count", "must be at most 10"),
        ({"name": "abc", "email": "a@b.example", "kind": "c"}, "kind", "must be one of: a, b"),
        ({"name": "abc", "email": "a@b.example", "tags": "x"}, "tags", "must be an array"),
        ({"name": "abc", "email": "a@b.example", "tags": ["a", "b", "c"]}, "tags", "must be at most 2 items"),
        ({"name": "abc", "email": "a@b.example", "tags": ["abcd"]}, "tags", "item 0 must be at most 3 characters"),
        ({"name": "abc", "email": "a@b.example", "again": "abd"}, "again", "must match name"),
        ({"name": "abc", "email": "a@b.example", "extra": 1}, "extra", "is not a recognised field"),
    ],
)
def test_each_problem_is_named(data, field, problem):
    assert errors_of(data)[field] == [problem]


def test_all_problems_reported_at_once():
    assert set(errors_of({"name": 1, "email": 2})) == {"name", "email"}


def test_cross_field_checks_wait_for_valid_fields():
    # A mismatch is not reported on top of a missing field: fix one thing at a time.
    assert set(errors_of({"again": "x", "email": "a@b.example"})) == {"name"}


@pytest.mark.parametrize("data", [[], "s", 1, None])
def test_body_must_be_an_object(data):
    assert errors_of(data) == {"body": ["must be a JSON object"]}


def test_partial_body_needs_one_field_and_skips_required():
    patch = Body("Patch", BODY.fields, partial=True)
    assert patch.validate({"count": 2}) == {"count": 2}
    with pytest.raises(ValidationFailed) as caught:
        patch.validate({})
    assert caught.value.errors == {"body": ["must contain at least one field to change"]}


def test_json_schema():
    schema = BODY.json_schema()
    assert schema["required"] == ["name", "email"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["name"] == {"type": "string", "minLength": 2, "maxLength": 5}
    assert schema["properties"]["email"]["format"] == "email"
    assert schema["properties"]["tags"]["items"] == {"type": "string", "maxLength": 3}
    assert schema["properties"]["count"]["default"] == 3
