"""The OpenAPI document generated from the registry, and the proto -> JSON Schema converter."""

from __future__ import annotations

import jsonschema
import pytest
from openapi_spec_validator import validate

from proto.erp.common.v1.common_pb2 import Money
from proto.erp.crm.v1 import crm_pb2
from proto.erp.finance.v1 import finance_pb2
from runtime.endpoint import discover
from runtime.openapi import MessageSchemas, document
from runtime.protobuf import to_dict


@pytest.fixture(scope="module")
def routes():
    return discover()


@pytest.fixture(scope="module")
def spec(routes):
    return document(routes)


def test_the_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_every_route_is_an_operation_named_after_its_handler(spec, routes):
    operations = {(r.path, r.method.lower()): r for r in routes}
    heads = {(r.path, "head") for r in routes if r.method == "GET"}  # HEAD wherever GET is
    assert {(p, m) for p, ops in spec["paths"].items() for m in ops} == set(operations) | heads
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert spec["paths"]["/api/v1/crm/customers/{id}"]["get"]["operationId"] == "get_customer"


def test_security_follows_the_auth_option(spec):
    paths = spec["paths"]
    assert paths["/api/v1/auth/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/api/v1/auth/login"]["post"]["security"] == []
    assert paths["/openapi.json"]["get"]["security"] == []
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_parameters_bodies_and_responses_of_a_resource(spec):
    listing = spec["paths"]["/api/v1/crm/customers"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert params["page_size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20,
                                             "description": "How many items per page"}
    assert params["status"]["schema"]["enum"] == ["lead", "prospect", "active", "inactive"]
    assert {"q", "page_token"} <= set(params) and listing["tags"] == ["crm"]
    assert "Requires `crm.customers:read`" in listing.get("description", "")

    item = spec["paths"]["/api/v1/crm/customers/{id}"]
    assert item["get"]["parameters"][0] == {"name": "id", "in": "path", "required": True, "description": "A record id",
                                            "schema": {"type": "string", "minLength": 1, "maxLength": 64}}
    assert "304" in item["get"]["responses"] and "ETag" in item["get"]["responses"]["200"]["headers"]
    assert "patch" in item and "patch" not in spec["paths"]["/api/v1/finance/payments/{id}"]

    create = spec["paths"]["/api/v1/crm/customers"]["post"]
    assert set(create["responses"]) == {"201", "400", "401", "403", "409", "413", "414", "415", "422", "429", "431",
                                        "500", "502", "503", "504"}
    assert {"Location", "Idempotent-Replayed"} <= set(create["responses"]["201"]["headers"])
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}
    assert "Idempotency-Key" in create["responses"]["409"]["description"]
    body = spec["components"]["schemas"]["CreateCustomer"]
    assert body["required"] == ["name"] and body["additionalProperties"] is False
    assert spec["components"]["schemas"]["UpdateCustomer"]["minProperties"] == 1


def _validator(spec, schema):
    return jsonschema.Draft202012Validator({**schema, "components": spec["components"]})


def test_response_schemas_accept_what_the_runtime_really_sends(spec):
    invoice = finance_pb2.Invoice(id="i", organization_id="o", customer_id="c", number="N", status="draft",
                                  total=Money(currency="EUR", amount="1.00"),
                                  lines=[finance_pb2.InvoiceLine(description="d", quantity="1",
                                                                 unit_price=Money(currency="EUR", amount="1.00"))])
    invoice.created_at.GetCurrentTime()
    ok = spec["paths"]["/api/v1/finance/invoices/{id}"]["get"]["responses"]["200"]
    schema = ok["content"]["application/json"]["schema"]
    envelope = {"success": True, "message": "OK", "data": to_dict(invoice)}
    _validator(spec, schema).validate(envelope)
    # And it is strict enough to catch a wrong shape.
    broken = {**envelope, "data": {**envelope["data"], "total": "1.00"}}
    assert not _validator(spec, schema).is_valid(broken)

    page = spec["paths"]["/api/v1/crm/customers"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    _validator(spec, page).validate({"success": True, "message": "OK", "data": {
        "items": [to_dict(crm_pb2.Customer(id="x", name="n"))], "next_page_token": "", "total_size": 1}})


def test_error_envelope_schema(spec):
    error = {"success": False, "message": "Validation failed", "code": "VALIDATION_FAILED",
             "errors": {"name": ["is required"]}, "request_id": "r"}
    schema = {"$ref": "#/components/schemas/Error400"}
    _validator(spec, schema).validate(error)
    assert not _validator(spec, schema).is_valid({"success": False, "message": "m"})
    assert not _validator(spec, schema).is_valid({**error, "code": "NOT_FOUND"})  # the codes of its status only


def test_message_converter_follows_the_protobuf_json_mapping():
    components: dict = {}
    ref = MessageSchemas(components).ref(crm_pb2.Deal.DESCRIPTOR)
    assert ref == {"$ref": "#/components/schemas/erp.crm.v1.Deal"}
    deal = components["erp.crm.v1.Deal"]
    assert deal["properties"]["amount"] == {"$ref": "#/components/schemas/erp.common.v1.Money"}
    assert deal["properties"]["created_at"] == {"type": "string", "format": "date-time",
                                                "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"}
    # Scalars are always printed; message fields only when set.
    assert "title" in deal["required"] and "amount" not in deal["required"]
    assert components["erp.common.v1.Money"]["required"] == ["currency", "amount"]


def test_what_a_reader_and_a_linter_need(spec):
    assert spec["servers"] == [{"url": "/", "description": "The gateway that served this document"}]
    assert spec["info"]["license"]["name"] and spec["info"]["contact"]["email"]
    tags = {t["name"]: t["description"] for t in spec["tags"]}
    for item in spec["paths"].values():
        for operation in item.values():
            assert operation["description"] and operation["summary"]
            assert set(operation["tags"]) <= set(tags)


def _data(spec, path, method="get", status="200"):
    schema = spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return schema["properties"]["data"]


def test_the_data_of_each_success_is_exact(spec):
    for path in ("/api/v1/auth/login", "/api/v1/auth/refresh"):
        assert _data(spec, path, "post") == {"$ref": "#/components/schemas/TokenAnswer"}
    assert _data(spec, "/api/v1/auth/register", "post", "201") == {"$ref": "#/components/schemas/TokenAnswer"}
    token = spec["components"]["schemas"]["TokenAnswer"]
    assert token["properties"]["user"] == {"$ref": "#/components/schemas/erp.auth.v1.User"}
    assert token["properties"]["token_type"] == {"const": "Bearer"} and token["additionalProperties"] is False
    assert _data(spec, "/api/v1/auth/me") == {"$ref": "#/components/schemas/erp.auth.v1.User"}
    assert _data(spec, "/api/v1/auth/logout", "post") == {"type": "null"}
    assert _data(spec, "/api/v1/crm/customers/{id}", "delete") == {"type": "null"}
    assert _data(spec, "/health") == {"$ref": "#/components/schemas/Health"}
    assert _data(spec, "/ready") == {"$ref": "#/components/schemas/Readiness"}
    not_ready = spec["paths"]["/ready"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    assert spec["components"]["schemas"][not_ready["$ref"].rsplit("/", 1)[1]]["properties"]["data"] == \
        {"$ref": "#/components/schemas/Readiness"}
    bare = spec["paths"]["/openapi.json"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "success" not in bare.get("properties", {}) and bare["required"] == ["openapi", "info", "paths"]


def test_statuses_follow_the_declarations(spec):
    paths = spec["paths"]
    # No input, no backend, no limit: only what every route answers (an undeclared query
    # parameter, an oversized target or header block).
    assert set(paths["/health"]["get"]["responses"]) == {"200", "400", "414", "431", "500"}
    assert set(paths["/ready"]["get"]["responses"]) == {"200", "400", "414", "431", "500", "503"}
    assert "401" in paths["/api/v1/auth/login"]["post"]["responses"]  # declared: a wrong password
    assert "409" not in paths["/api/v1/auth/login"]["post"]["responses"]
    assert "409" in paths["/api/v1/auth/register"]["post"]["responses"]
    get = paths["/api/v1/crm/customers/{id}"]["get"]["responses"]
    assert set(get) == {"200", "304", "400", "401", "403", "404", "414", "429", "431", "500", "502", "503", "504"}
    assert set(get["200"]["headers"]) == {"X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining",
                                          "RateLimit-Reset", "ETag", "X-Cache"}
    assert "Retry-After" in get["429"]["headers"] and "WWW-Authenticate" in get["401"]["headers"]
    head = paths["/api/v1/crm/customers/{id}"]["head"]["responses"]
    assert set(head) == set(get) and all("content" not in answer for answer in head.values())
