"""Error bodies are bounded whatever the request held (issue 10, item 3)."""

from __future__ import annotations

from runtime.errors import MAX_ERROR_FIELDS, ValidationFailed, bounded_errors


def test_small_error_maps_are_kept_as_they_are():
    errors = {"email": ["is required"], "password": ["is required"]}
    assert bounded_errors(errors) == errors


def test_past_twenty_fields_the_rest_are_counted():
    errors = {f"f{i}": ["is not a recognised field"] for i in range(1000)}
    out = bounded_errors(errors)
    assert list(out)[:MAX_ERROR_FIELDS] == [f"f{i}" for i in range(MAX_ERROR_FIELDS)]
    assert out["_more"] == ["980 more fields with problems not listed"]
    assert len(out) == MAX_ERROR_FIELDS + 1


def test_long_names_and_long_problem_lists_are_cut():
    out = bounded_errors({"n" * 500: [f"problem {i}" for i in range(50)]})
    (name,) = out
    assert len(name) == 100 and name.endswith("\u2026")
    assert len(out[name]) == 5


def test_the_envelope_applies_the_bound():
    body = ValidationFailed(errors={f"k{i}": ["x"] for i in range(100)}).body("rid")
    assert len(body["errors"]) == MAX_ERROR_FIELDS + 1 and body["request_id"] == "rid"
