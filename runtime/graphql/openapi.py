"""How /openapi.json describes the GraphQL routes: every answer is a GraphQL response document
(errors in `errors`, with `extensions.code`), never the envelope."""

from runtime.responses import Document

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

_STATUSES = {
    400: "A request error, nothing ran (graphql-response+json; plain JSON clients get 200): "
         "parse, validation, limits, variables, a bad parameter",
    401: "Missing, invalid, expired or revoked access token",
    403: "A mutation the caller's roles do not allow (nothing of it ran)",
    404: "GraphQL is switched off (graphql.enabled)",
    405: "A mutation sent with GET",
    406: "Accept names neither application/graphql-response+json nor application/json",
    413: "Request body too large",
    415: "Content-Type is not application/json",
    429: "Rate limited; see Retry-After",
    500: "Internal error",
}

RESPONSE = Document(
    {"type": "object",
     "properties": {"data": {"type": ["object", "null"]}, "errors": {"type": "array", "items": _ERROR},
                    "extensions": {"type": "object"}}},
    doc="A GraphQL response (GraphQL over HTTP); GraphiQL's page (text/html) for browsers when enabled",
    media_types=("application/json", "application/graphql-response+json", "text/html"),
    statuses=_STATUSES,
    rate_limited=True,
)

ASSET = Document({"type": "string"}, doc="A GraphiQL script or stylesheet, from the npm-installed packages",
                 media_types=("text/javascript", "text/css"))
