"""GraphQL errors as clients see them: `{message, locations?, path?, extensions: {code}}`.

A resolver raises the same typed errors as a REST handler (runtime.errors); their `code`
becomes `extensions.code`, their field errors `extensions.errors`. Anything else is logged
and answered as INTERNAL without its text, like REST's 500.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError

from runtime.errors import ApiError

log = logging.getLogger("gateway.graphql")

# Codes of errors found before execution (the Apollo names clients already know).
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
BAD_REQUEST = "BAD_REQUEST"
PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"

# REST's VALIDATION_FAILED is, in GraphQL, an argument the client got wrong.
_CODE = {"VALIDATION_FAILED": BAD_USER_INPUT, "MALFORMED_JSON": BAD_REQUEST}


def request_error(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code, **extensions}}


def from_api_error(error: ApiError) -> dict[str, Any]:
    extensions: dict[str, Any] = {"code": _CODE.get(error.code, error.code)}
    if error.errors:
        extensions["errors"] = error.errors
    return {"message": error.message, "extensions": extensions}


def format_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        doc: dict[str, Any] = dict(error.formatted)
        doc.setdefault("extensions", {}).setdefault("code", BAD_USER_INPUT if error.path is None else "INTERNAL")
        return doc
    if isinstance(original, ApiError):
        doc = {**dict(error.formatted), **from_api_error(original)}
    else:
        log.error("resolver failed", exc_info=original, extra={"request_id": request_id, "path": error.path})
        doc = {**dict(error.formatted), "message": "Internal server error", "extensions": {"code": "INTERNAL"}}
    return doc
