"""The OpenAPI 3.1 document, generated from the route registry: nothing is written twice.

Request bodies and query parameters come from the routes' `runtime.schema.Body`s; response
`data` from what a route declares (`response=`, see runtime.responses), protobuf messages
converted from their descriptors, so the published schema is what `runtime.protobuf.to_dict`
really produces. The statuses of each operation, and the headers of each answer, follow from
the same declarations (auth, permission, body, path parameters, rate limit, cache, etag,
status, errors, upstream), in the order the pipeline applies them. tests/contract.py checks
every answer the integration tests receive against this document, and tests lint it.
"""

from __future__ import annotations

import inspect
from typing import Any, Iterable

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from runtime import errors as api_errors
from runtime import idempotency
from runtime.endpoint import PATH_PARAMETER, Route
from runtime.responses import Document, Record
from runtime.request_id import PATTERN as REQUEST_ID_PATTERN
from runtime.rest import Page
from runtime.timestamps import RFC3339_PATTERN

Schema = dict[str, Any]

_SECURITY: dict[str, list[dict[str, list[str]]]] = {"required": [{"bearerAuth": []}], "optional": [{"bearerAuth": []}, {}], "none": []}

INFO = {
    "title": "ERP API Gateway",
    "description": (
        "The single front door of the ERP suite. Every answer is JSON: a success is "
        "`{success: true, message, data}`, an error `{success: false, message, code, errors?, request_id}` "
        "with `errors` keyed by field. Every answer carries `X-Request-ID`."
    ),
    # Placeholders under the reserved .example domain until the suite has a public home.
    "contact": {"name": "ERP gateway team", "url": "https://erp.example/support", "email": "api@erp.example"},
    "license": {"name": "Proprietary", "url": "https://erp.example/license"},
}
# Relative: the gateway that served the document (OpenAPI 3.1, section 4.8.5).
SERVERS = [{"url": "/", "description": "The gateway that served this document"}]
TAGS = {
    "auth": "Sign in, sign up, refresh, sign out and the signed-in user",
    "crm": "Customers, their contacts and deals",
    "hrm": "Employees and departments",
    "finance": "Accounts, invoices and payments",
    "system": "Liveness, readiness and this document",
}

# Why each status happens, when the declarations imply it.
_WHY = {
    400: "The request is invalid: `errors` names each field, query or path parameter",
    401: "Missing, invalid, expired or revoked access token",
    403: "The caller's roles do not grant the route's permission",
    404: "No such record in the caller's organization",
    409: "Conflicts with an existing record (a unique field)",
    413: "The request body is larger than the route's limit",
    414: "The request target is longer than 8 KiB",
    415: "The body is not `application/json`",
    422: "This Idempotency-Key was used with a different request",
    429: "Rate limited: wait `Retry-After` seconds",
    431: "The request's header fields are larger than 32 KiB in all",
    500: "Internal error; quote the request id",
    502: "The backend answered with an error the gateway has no better status for",
    503: "A backend is unavailable (or its circuit breaker is open): retry after `Retry-After` seconds",
    504: "A backend did not answer within the request's deadline",
}
# status -> the error codes it carries (runtime.errors), e.g. 400 -> VALIDATION_FAILED, MALFORMED_JSON
_CODES: dict[int, list[str]] = {}
for _kind in api_errors.ApiError.__subclasses__():
    _CODES.setdefault(_kind.status, []).append(_kind.code)

_RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
HEADERS: dict[str, Schema] = {
    "X-Request-ID": {"description": "The caller's X-Request-ID when well-formed, else a generated one",
                     "required": True, "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN}},
    "RateLimit-Limit": {"description": "Requests allowed in the tightest policy's window",
                        "schema": {"type": "integer", "minimum": 0}},
    "RateLimit-Remaining": {"description": "Requests left in the window", "schema": {"type": "integer", "minimum": 0}},
    "RateLimit-Reset": {"description": "Seconds until the budget is full again", "schema": {"type": "integer", "minimum": 0}},
    "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer", "minimum": 0}},
    "ETag": {"description": "Strong validator of the record: send it back in If-None-Match", "required": True,
             "schema": {"type": "string", "pattern": '^"[0-9a-f]{32}"$'}},
    "X-Cache": {"description": "Whether the gateway's cache answered", "schema": {"type": "string", "enum": ["HIT", "MISS"]}},
    "Location": {"description": "The new record's path", "required": True, "schema": {"type": "string", "format": "uri-reference"}},
    idempotency.REPLAYED: {"description": "This is the stored answer to an earlier request with the same Idempotency-Key",
                           "schema": {"type": "string", "enum": ["true"]}},
    "WWW-Authenticate": {"description": "RFC 6750: `Bearer error=\"invalid_token\"`", "schema": {"type": "string"}},
}

# protobuf JSON mapping (https://protobuf.dev/programming-guides/json/) of scalar types.
_SCALARS: dict[int, Schema] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    **{t: {"type": "integer"} for t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32,
                                          FieldDescriptor.TYPE_SFIXED32, FieldDescriptor.TYPE_UINT32,
                                          FieldDescriptor.TYPE_FIXED32)},
    # 64-bit integers travel as strings in JSON so that JavaScript does not lose precision.
    **{t: {"type": "string", "pattern": r"^-?\d+$"} for t in (
        FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64)},
}
_WELL_KNOWN: dict[str, Schema] = {
    # runtime.protobuf.to_dict writes every Timestamp in one format: UTC, milliseconds.
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
}


class MessageSchemas:
    """protobuf descriptors -> JSON Schemas in `components/schemas`, one per message, by $ref."""

    def __init__(self, components: dict[str, Schema]) -> None:
        self.components = components

    def ref(self, descriptor: Descriptor) -> Schema:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        name = descriptor.full_name
        if name not in self.components:
            self.components[name] = {}  # placeholder first: messages may refer to themselves
            self.components[name] = self._message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def _message(self, descriptor: Descriptor) -> Schema:
        properties = {fd.name: self._field(fd) for fd in descriptor.fields}
        # to_dict prints every field without presence (scalars, repeated, maps), defaults included;
        # message fields and proto3 `optional` ones only when set.
        required = [fd.name for fd in descriptor.fields if not fd.has_presence]
        doc: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            doc["required"] = required
        return doc

    def _field(self, fd: FieldDescriptor) -> Schema:
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value = fd.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        if fd.is_repeated:
            return {"type": "array", "items": self._single(fd)}
        return self._single(fd)

    def _single(self, fd: FieldDescriptor) -> Schema:
        if fd.message_type is not None:
            return self.ref(fd.message_type)
        if fd.enum_type is not None:
            return {"type": "string", "enum": [v.name for v in fd.enum_type.values]}
        return dict(_SCALARS[fd.type])




def document(routes: Iterable[Route], *, version: str = "1.0.0") -> Schema:
    components: dict[str, Schema] = {}
    messages = MessageSchemas(components)
    paths: dict[str, dict[str, Schema]] = {}
    tags: set[str] = set()
    for route in routes:
        operation = _operation(route, messages, components)
        item = paths.setdefault(route.path, {})
        item[route.method.lower()] = operation
        if route.method == "GET":  # HEAD is answered wherever GET is: same headers, no body
            item["head"] = _head(operation)
        tags.update(route.tags)
    return {
        "openapi": "3.1.0",
        "info": {**INFO, "version": version},
        "servers": SERVERS,
        "tags": [{"name": tag, "description": TAGS.get(tag, f"The {tag} operations")} for tag in sorted(tags)],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "headers": HEADERS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                               "description": "An access token from login, register or refresh"}},
        },
    }


def _operation(route: Route, messages: MessageSchemas, components: dict[str, Schema]) -> Schema:
    lines = (inspect.getdoc(route.handler) or "").splitlines()
    description = "\n".join(lines[1:]).strip() or route.summary
    if route.permission:
        description += f"\n\nRequires `{route.permission}`."
    operation: Schema = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "description": description,
        "tags": list(route.tags),
        "security": _SECURITY[route.auth],
    }
    id_schema = {k: v for k, v in PATH_PARAMETER.json_schema().items() if k != "description"}
    parameters = [
        {"name": name, "in": "path", "required": True, "description": PATH_PARAMETER.doc, "schema": id_schema}
        for name in route.path_params
    ]
    if route.query is not None:
        parameters += [
            {"name": name, "in": "query", "required": field.required,
             "description": field.doc or name.replace("_", " ").capitalize(), "schema": field.json_schema()}
            for name, field in route.query.fields.items()
        ]
    if route.etag:
        parameters.append({"name": "If-None-Match", "in": "header", "required": False,
                           "schema": {"type": "string"}, "description": "ETags of copies the client holds"})
    if idempotency.applies(route):
        parameters.append({"name": idempotency.HEADER, "in": "header", "required": False,
                           "schema": {"type": "string", "minLength": 1},
                           "description": "Retry safely: a repeat with the same key gets the first answer, "
                                          "marked Idempotent-Replayed, and makes no second write"})
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        components[route.body.name] = route.body.json_schema()
        body = route.body
        operation["requestBody"] = {
            # An empty body reads as {}: required only when some field is (or an update needs one).
            "required": body.partial or any(f.required for f in body.fields.values()),
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body.name}"}}},
        }
    operation["responses"] = _responses(route, messages)
    return operation


def _head(get: Schema) -> Schema:
    """The HEAD twin of a GET operation: the same answers and headers, no content."""
    operation = {key: value for key, value in get.items() if key != "responses"}
    operation["operationId"] = get["operationId"] + "_head"
    operation["summary"] = "Headers only: " + get["summary"][0].lower() + get["summary"][1:]
    operation["description"] = "The headers `GET` would answer with, and no body.\n\n" + get["description"]
    operation["responses"] = {
        status: {key: value for key, value in answer.items() if key != "content"}
        for status, answer in get["responses"].items()
    }
    return operation


def _statuses(route: Route) -> dict[int, Any]:
    """Every error status the route can answer, in the pipeline's order, with why."""
    wanted: dict[int, Any] = {}
    if route.auth != "none":
        wanted[401] = _WHY[401]
    if route.rate_limit is not False:
        wanted[429] = _WHY[429]
    if route.permission:
        wanted[403] = _WHY[403]
    wanted[400] = _WHY[400]  # every route refuses undeclared query parameters (runtime.pipeline)
    if route.body is not None:
        wanted[413] = _WHY[413]
        wanted[415] = _WHY[415]
    if route.path_params:
        wanted[404] = _WHY[404]
    if route.method in ("PATCH", "PUT") or (route.method == "POST" and route.status == 201):
        wanted[409] = _WHY[409]
    if idempotency.applies(route):
        wanted[400] = _WHY[400]  # a malformed key
        busy = "a request with this Idempotency-Key is still in progress"
        wanted[409] = f"{wanted[409]}; or {busy}" if 409 in wanted else busy[0].upper() + busy[1:]
        wanted[422] = _WHY[422]
        wanted[503] = _WHY[503]  # keys cannot be checked while Valkey is down
    wanted[414], wanted[431] = _WHY[414], _WHY[431]  # every route (runtime.security.request_size)
    if route.auth != "none":  # security.revocation_unavailable: fail_closed, while Valkey and the feed are down
        wanted[503] = _WHY[503]
    wanted[500] = _WHY[500]
    if route.upstream:
        wanted.update({502: _WHY[502], 503: _WHY[503], 504: _WHY[504]})
    wanted.update(route.errors)
    return dict(sorted(wanted.items()))


def _headers(route: Route, status: int) -> Schema:
    names = ["X-Request-ID"]
    if route.rate_limit is not False:
        names += _RATE_LIMIT_HEADERS
    if status in (429, 503) or (status == 409 and idempotency.applies(route)):  # 409: a keyed request still runs
        names.append("Retry-After")
    if status == 401:
        names.append("WWW-Authenticate")
    if status in (200, 304) and route.etag:
        names.append("ETag")
    if status in (200, 304) and route.cache is not None:
        names.append("X-Cache")
    if status == 201:
        names.append("Location")
    if idempotency.applies(route) and status < 500:  # any kept answer may be replayed
        names.append(idempotency.REPLAYED)
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _responses(route: Route, messages: MessageSchemas) -> Schema:
    if isinstance(route.response, Document):
        schema = _schema(dict(route.response.schema), messages)
        success_doc = route.response.doc or "The document itself, not an envelope"
    else:
        schema = _envelope(_schema(route.response, messages))
        success_doc = {200: "OK", 201: "Created"}.get(route.status, "Success")
    responses: Schema = {
        str(route.status): {
            "description": success_doc,
            "headers": _headers(route, route.status),
            "content": {"application/json": {"schema": schema}},
        }
    }
    if route.etag:
        responses["304"] = {"description": "Not Modified: the If-None-Match tag is current; no body",
                            "headers": _headers(route, 304)}
    for status, why in _statuses(route).items():
        data = None
        if isinstance(why, tuple):
            why, data = why
        responses[str(status)] = {
            "description": why,
            "headers": _headers(route, status),
            "content": {"application/json": {"schema": _error_ref(route, status, data, messages)}},
        }
    return responses


def _schema(value: Any, messages: MessageSchemas) -> Schema:
    """A declaration (runtime.responses) -> JSON Schema; dicts are walked for nested declarations."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, Page):
        name = f"{value.message.DESCRIPTOR.name}Page"
        if name not in messages.components:
            messages.components[name] = {
                "type": "object",
                "description": f"One page of {value.message.DESCRIPTOR.name} records",
                "properties": {
                    "items": {"type": "array", "items": messages.ref(value.message.DESCRIPTOR)},
                    "next_page_token": {"type": "string", "description": "Pass as page_token for the next page; empty on the last"},
                    "total_size": {"type": "integer", "minimum": 0, "description": "Records matching, over all pages"},
                },
                "required": ["items", "next_page_token", "total_size"],
                "additionalProperties": False,
            }
        return {"$ref": f"#/components/schemas/{name}"}
    if isinstance(value, Record):
        if value.name not in messages.components:
            messages.components[value.name] = {}  # placeholder: a record may refer to itself
            properties: Schema = {}
            required: list[str] = []
            if value.extends is not None:
                ref = messages.ref(value.extends.DESCRIPTOR)["$ref"].rsplit("/", 1)[1]
                base = messages.components[ref]
                properties.update(base["properties"])
                required += base.get("required", [])
            properties.update({name: _schema(v, messages) for name, v in value.properties.items()})
            required += [name for name in value.properties if name not in value.optional]
            doc: Schema = {"type": "object", "properties": properties, "required": required,
                           "additionalProperties": False}
            if value.doc:
                doc["description"] = value.doc
            messages.components[value.name] = doc
        return {"$ref": f"#/components/schemas/{value.name}"}
    if isinstance(value, dict):  # JSON Schema, maybe with declarations inside (e.g. additionalProperties)
        return {key: _schema(v, messages) if _is_declaration(v) else v for key, v in value.items()}
    if _is_message(value):
        return messages.ref(value.DESCRIPTOR)
    raise TypeError(f"cannot describe {value!r} as a response: use a message class, Page, Record, Document or dict")


def _is_declaration(value: Any) -> bool:
    return isinstance(value, (dict, Record, Page)) or _is_message(value)


def _is_message(value: Any) -> bool:
    return isinstance(value, type) and isinstance(getattr(value, "DESCRIPTOR", None), Descriptor)


def _envelope(data: Schema) -> Schema:
    return {
        "type": "object",
        "properties": {"success": {"const": True}, "message": {"type": "string"}, "data": data},
        "required": ["success", "message", "data"],
        "additionalProperties": False,
    }


def _error_ref(route: Route, status: int, data: Any, messages: MessageSchemas) -> Schema:
    """The error envelope with `code` narrowed to the codes of `status` (`Error404`, ...), and
    with `data` when the route declares some for it (`<operationId>Error503`)."""
    name = f"Error{status}"
    schema = _error_schema(codes=_CODES.get(status, ["INTERNAL"]))
    if data is not None:
        name = f"{route.handler.__name__.title().replace('_', '')}Error{status}"
        schema["properties"]["data"] = _schema(data, messages)
        schema["required"].append("data")
    messages.components.setdefault(name, schema)
    return {"$ref": f"#/components/schemas/{name}"}


def _error_schema(codes: list[str] | None = None) -> Schema:
    all_codes = sorted({code for found in _CODES.values() for code in found})
    return {
        "type": "object",
        "description": "The error envelope",
        "properties": {
            "success": {"const": False},
            "message": {"type": "string", "description": "For people; never a stack trace"},
            "code": {"type": "string", "enum": codes or all_codes, "description": "Stable and machine-readable"},
            "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                       "description": "Problems keyed by field or parameter"},
            "request_id": {"type": "string", "description": "Quote it when reporting a problem"},
        },
        "required": ["success", "message", "code", "request_id"],
        "additionalProperties": False,
    }
