"""Relay connections over the REST collections' list calls, with opaque cursors.

A cursor names a position as (the backend page token the page started at, the index in
that page); `after: cursor` reads from that page token and drops what came before it, so a
backend needs nothing new. Lists go through the REST route's cache policy under the same key
as the REST URL with the same parameters, so REST and GraphQL share entries and invalidation.
"""

from __future__ import annotations

import base64
from typing import Any, Mapping
from urllib.parse import urlencode

import orjson

from runtime.errors import ValidationFailed
from runtime.near_cache import _ABSENT
from runtime.rest import MAX_PAGE_SIZE, Collection


def encode_cursor(page_token: str, index: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([page_token, index])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        token, index = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(token, str) and isinstance(index, int) and index >= 0:
            return token, index
    except (ValueError, TypeError, orjson.JSONDecodeError):
        pass
    raise ValidationFailed.field("after", "is not a cursor this API gave out")


async def cached(ctx: Any, policy: str | None, resource: str, load: Any) -> Any:
    """`load()` through a REST cache policy (key: the REST resource), or directly."""
    cache = ctx.resources.cache
    if policy is None or cache is None or ctx.principal is None:
        return await load()
    data, _hit = await cache.fetch(ctx, policy, resource, load)
    return data


def cached_now(ctx: Any, policy: str, resource: str, load: Any) -> Any:
    """`cached`, but the data itself when this worker's near cache holds it: a resolver that
    returns it leaves graphql-core nothing to await, and a query of such fields runs
    synchronously (`gql_me` in the profile: 86 µs CPU instead of 117; loadtests/README.md)."""
    cache = ctx.resources.cache
    if cache is not None and ctx.principal is not None:
        data = cache.peek(ctx, policy, resource)
        if data is not _ABSENT:
            return data
    return cached(ctx, policy, resource, load)


async def connection(ctx: Any, collection: Collection, path: str, *, first: int, after: str | None,
                     cache: str | None = None, filters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ValidationFailed.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    token, skip = decode_cursor(after) if after else ("", 0)
    if after:
        skip += 1  # `after` the item at that index
    query = {"page_size": min(skip + first, MAX_PAGE_SIZE), **{k: v for k, v in (filters or {}).items() if v is not None}}
    if token:
        query["page_token"] = token
    resource = path + "?" + urlencode(sorted(query.items()))
    page = await cached(ctx, cache, resource, lambda: collection.list(ctx, query))
    items = page["items"][skip:skip + first]
    next_token = page["next_page_token"]
    has_next = bool(next_token) or skip + first < len(page["items"])
    edges = [{"cursor": encode_cursor(token, skip + i), "node": item} for i, item in enumerate(items)]
    return {
        "edges": edges,
        "nodes": items,
        "page_info": {"has_next_page": has_next, "end_cursor": edges[-1]["cursor"] if edges else None},
        "total_count": page["total_size"],
    }
