from functools import cache

import orjson

from runtime import Reply, endpoint
from runtime.endpoint import discover
from runtime.openapi import document
from runtime.responses import Document

OPENAPI = Document({
    "type": "object",
    "properties": {"openapi": {"type": "string", "pattern": r"^3\.1\.\d+$"}, "info": {"type": "object"},
                   "paths": {"type": "object"}},
    "required": ["openapi", "info", "paths"],
}, doc="The OpenAPI 3.1 document itself, not an envelope")


@cache
def _spec() -> bytes:
    # The registry is fixed once the handlers are imported: build and serialize once per worker.
    return orjson.dumps(document(discover()))


@endpoint("GET", "/openapi.json", auth=False, tags=["system"], response=OPENAPI, upstream=False)
async def openapi(req, ctx):
    """This API as an OpenAPI 3.1 document, generated from the route registry."""
    return Reply(_spec(), media_type="application/json")
