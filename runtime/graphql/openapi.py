"""How /openapi.json describes the GraphQL routes: GraphQL response documents, not envelopes."""

from runtime.openapi import Document

_ERROR = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {"type": "string"},
        "locations": {"type": "array", "items": {"type": "object"}},
        "path": {"type": "array", "items": {"type": ["string", "integer"]}},
        "extensions": {"type": "object", "properties": {"code": {"type": "string"}}},
    },
}

RESPONSE = Document(
    {"type": "object",
     "properties": {"data": {"type": ["object", "null"]}, "errors": {"type": "array", "items": _ERROR},
                    "extensions": {"type": "object"}},
     "description": "A GraphQL response (GraphQL over HTTP); request errors have `errors` and no `data`"},
    media_types=("application/json", "application/graphql-response+json", "text/html"),
)

ASSET = Document({"type": "string"}, media_types=("text/javascript", "text/css"), enveloped_errors=True,
                 description="A GraphiQL script or stylesheet, from the npm-installed packages")
