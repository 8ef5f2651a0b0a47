from functools import cache

import orjson

from runtime import Reply, endpoint
from runtime.endpoint import discover
from runtime.openapi import document


@cache
def _spec() -> bytes:
    # The registry is fixed once the handlers are imported: build and serialize once per worker.
    return orjson.dumps(document(discover()))


@endpoint("GET", "/openapi.json", auth=False, tags=["system"])
async def openapi(req, ctx):
    """This API as an OpenAPI 3.1 document, generated from the route registry."""
    return Reply(_spec(), media_type="application/json")
