"""Reading a JSON request body within limits: size (413), media type (415), syntax (400)."""

from __future__ import annotations

from typing import Any

import falcon.asgi
import orjson

from runtime.errors import MalformedJson, PayloadTooLarge, UnsupportedMediaType


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def read_json(req: falcon.asgi.Request, limit: int) -> Any:
    """The parsed body; an empty body reads as `{}` so that schemas name missing fields."""
    length = req.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
    # Without a Content-Length (chunked), count as we read and stop one byte past the limit.
    raw = bytearray()
    async for chunk in req.stream:
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
    if not raw.strip():
        return {}
    if not _is_json(req.content_type):
        raise UnsupportedMediaType(errors={"Content-Type": ["must be application/json"]})
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(errors={"body": [f"is not valid JSON: {exc.msg} at position {exc.pos}"]}) from None
