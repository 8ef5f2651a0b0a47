"""What a route's `data` holds, declared once for /openapi.json (and so for generated clients).

`@endpoint(response=...)` takes a protobuf message class (`to_dict` of it), a
`runtime.rest.Page` of one, a `Record` (a named object whose properties are any of these or
JSON Schema), a `Document` (the answer is a bare JSON document, not an envelope), or None:
`data` is `null` (logout, DELETE). `runtime.openapi` turns the declaration into JSON Schema;
tests/contract.py checks every answer the integration tests receive against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Record:
    """A named JSON object: `properties` maps each name to a message class, a Page, a Record
    or a JSON Schema dict; every property is present unless listed in `optional`."""

    name: str
    properties: Mapping[str, Any]
    optional: tuple[str, ...] = ()
    doc: str = ""
    extends: Any = None  # a message class whose fields come first (e.g. an account plus its secret)


@dataclass(frozen=True)
class Document:
    """The answer is this document itself, without the envelope (e.g. /openapi.json); of
    `media_type` (a text/plain document has the schema {"type": "string"})."""

    schema: Mapping[str, Any]
    doc: str = ""
    media_types: tuple[str, ...] = ("application/json",)  # the same schema under each
    # Error statuses answered with this same document (status -> why) instead of the envelope
    # (GraphQL answers its errors in `errors`); empty: errors are envelopes.
    statuses: Mapping[int, str] = field(default_factory=dict)
    # Counts against the rate limits itself (the route is exempt from the pipeline's check).
    rate_limited: bool = False
