"""The OpenAPI 3.1 document, generated from the route registry: nothing is written twice.

Request bodies and query parameters come from the routes' `runtime.schema.Body`s; response
`data` from the protobuf message a route declares (`response=`), converted from its
descriptor, so the published schema is what `runtime.protobuf.to_dict` really produces.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from runtime.endpoint import Route
from runtime.rest import Page

Schema = dict[str, Any]


@dataclass(frozen=True)
class Document:
    """`response=` of a route that answers its own documents, not the envelope (GraphQL,
    GraphiQL's files): their schema and media types; `enveloped_errors`: its errors are
    still envelopes (else every status answers such a document)."""

    schema: Schema
    media_types: tuple[str, ...] = ("application/json",)
    enveloped_errors: bool = False
    description: str = "OK"

_PATH_PARAM = re.compile(r"{(\w+)}")
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_SECURITY = {"required": [{"bearerAuth": []}], "optional": [{"bearerAuth": []}, {}], "none": []}

# Errors every route can answer, and the ones its declarations add.
_ERRORS = {
    "400": "The request is invalid; `errors` names each field or parameter",
    "401": "Missing, invalid, expired or revoked access token",
    "403": "The caller's roles do not grant the route's permission",
    "404": "No such record in the caller's organization",
    "409": "Conflicts with an existing record",
    "413": "Request body too large",
    "415": "Content-Type is not application/json",
    "429": "Rate limited; see Retry-After",
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
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
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


def document(routes: Iterable[Route], *, title: str = "ERP API Gateway", version: str = "1.0.0") -> Schema:
    components: dict[str, Schema] = {"Error": _error_schema()}
    messages = MessageSchemas(components)
    paths: dict[str, dict[str, Schema]] = {}
    operation_ids: set[str] = set()
    for route in routes:
        operation = _operation(route, messages, components)
        if operation["operationId"] in operation_ids:  # handler names are unique today; stay valid if not
            operation["operationId"] = route.name
        operation_ids.add(operation["operationId"])
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Every answer is an envelope: `{success, message, data}` or the error envelope."},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _operation(route: Route, messages: MessageSchemas, components: dict[str, Schema]) -> Schema:
    doc = inspect.getdoc(route.handler) or ""
    operation: Schema = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "tags": list(route.tags),
        "security": _SECURITY[route.auth],
        "responses": _responses(route, messages),
    }
    description = "\n".join(doc.splitlines()[1:]).strip()
    if route.permission:
        description = (description + "\n\n" if description else "") + f"Requires `{route.permission}`."
    if description:
        operation["description"] = description
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _PATH_PARAM.findall(route.path)
    ]
    if route.query is not None:
        parameters += [
            {"name": name, "in": "query", "required": field.required, "schema": field.json_schema()}
            for name, field in route.query.fields.items()
        ]
    if route.etag:
        parameters.append({"name": "If-None-Match", "in": "header", "required": False,
                           "schema": {"type": "string"}, "description": "ETags of copies the client holds"})
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        components[route.body.name] = route.body.json_schema()
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{route.body.name}"}}},
        }
    return operation


def _responses(route: Route, messages: MessageSchemas) -> Schema:
    if isinstance(route.response, Document):
        doc = route.response
        content = {media: {"schema": doc.schema} for media in doc.media_types}
        answer = {"description": doc.description, "content": content}
        if doc.enveloped_errors:
            return {str(route.status): answer, "404": _error_response(_ERRORS["404"]),
                    "default": _error_response("Error")}
        return {str(route.status): answer, "default": {**answer, "description": "Errors, in `errors`"}}
    success: Schema = {
        "description": "OK" if route.status == 200 else "Created" if route.status == 201 else "Success",
        "content": {"application/json": {"schema": _envelope(_data_schema(route.response, messages))}},
    }
    if route.etag:
        success["headers"] = {"ETag": {"schema": {"type": "string"}, "description": "Strong validator"}}
    responses: Schema = {str(route.status): success}
    if route.etag:
        responses["304"] = {"description": "Not Modified: the If-None-Match tag is current; no body"}
    wanted = ["400", "429"]
    if route.auth != "none":
        wanted.append("401")
    if route.permission:
        wanted.append("403")
    if "{" in route.path:
        wanted.append("404")
    if route.method in ("POST", "PATCH", "PUT"):
        wanted.append("409")
    if route.body is not None:
        wanted += ["413", "415"]
    for status in sorted(wanted):
        responses[status] = _error_response(_ERRORS[status])
    # Anything else (backend unavailable or timed out, internal error) is still an error envelope.
    responses["default"] = _error_response("Error")
    return responses


def _data_schema(response: Any, messages: MessageSchemas) -> Schema:
    if response is None:
        return {}
    if isinstance(response, Page):
        return {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": messages.ref(response.message.DESCRIPTOR)},
                "next_page_token": {"type": "string", "description": "Empty on the last page"},
                "total_size": {"type": "integer", "minimum": 0},
            },
            "required": ["items", "next_page_token", "total_size"],
            "additionalProperties": False,
        }
    if isinstance(response, dict):
        return response
    return messages.ref(response.DESCRIPTOR)


def _envelope(data: Schema) -> Schema:
    return {
        "type": "object",
        "properties": {"success": {"const": True}, "message": {"type": "string"}, "data": data},
        "required": ["success", "message", "data"],
    }


def _error_response(description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def _error_schema() -> Schema:
    return {
        "type": "object",
        "properties": {
            "success": {"const": False},
            "message": {"type": "string"},
            "code": {"type": "string", "description": "Stable and machine-readable, e.g. VALIDATION_FAILED"},
            "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                       "description": "Problems keyed by field or parameter"},
            "request_id": {"type": "string"},
        },
        "required": ["success", "message", "code", "request_id"],
    }
