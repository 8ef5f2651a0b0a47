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
    assert {(p, m) for p, ops in spec["paths"].items() for m in ops} == set(operations)
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
    assert item["get"]["parameters"][0] == {"name": "id", "in": "path", "required": True,
                                            "schema": {"type": "string", "minLength": 1}}
    assert "304" in item["get"]["responses"] and "ETag" in item["get"]["responses"]["200"]["headers"]
    assert "patch" in item and "patch" not in spec["paths"]["/api/v1/finance/payments/{id}"]

    create = spec["paths"]["/api/v1/crm/customers"]["post"]
    assert set(create["responses"]) >= {"201", "400", "401", "403", "409", "default"}
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
    schema = {"$ref": "#/components/schemas/Error"}
    _validator(spec, schema).validate(error)
    assert not _validator(spec, schema).is_valid({"success": False, "message": "m"})


def test_message_converter_follows_the_protobuf_json_mapping():
    components: dict = {}
    ref = MessageSchemas(components).ref(crm_pb2.Deal.DESCRIPTOR)
    assert ref == {"$ref": "#/components/schemas/erp.crm.v1.Deal"}
    deal = components["erp.crm.v1.Deal"]
    assert deal["properties"]["amount"] == {"$ref": "#/components/schemas/erp.common.v1.Money"}
    assert deal["properties"]["created_at"] == {"type": "string", "format": "date-time"}
    # Scalars are always printed; message fields only when set.
    assert "title" in deal["required"] and "amount" not in deal["required"]
    assert components["erp.common.v1.Money"]["required"] == ["currency", "amount"]
