"""Resolver building blocks over a REST `Collection`: one record (through the REST route's
cache entry), a related record (through this request's DataLoader), and writes (validated
by the REST body schema, then the REST route's cache invalidation)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from runtime.errors import NotFound
from runtime.graphql.connections import cached, connection
from runtime.rest import Collection

__all__ = ["connection", "get", "related", "create", "update", "delete"]


async def get(ctx: Any, collection: Collection, id: str, path: str, cache: str | None = None) -> dict[str, Any]:
    """`GET path/{id}` as REST answers it (the same cache entry); NOT_FOUND when absent."""
    return await cached(ctx, cache, f"{path}/{id}", lambda: collection.get(ctx, id))


async def related(ctx: Any, collection: Collection, id: str | None) -> dict[str, Any] | None:
    """A record another one points at, batched with every other such load of this request;
    None when the reference is empty."""
    if not id:
        return None
    record = await ctx.loaders.get(collection.service, collection.message, collection.plural).load(id)
    if record is None:
        raise NotFound(f"{collection.name} {id} not found")
    return record


async def _invalidate(ctx: Any, policies: Iterable[str]) -> None:
    cache = ctx.resources.cache
    if cache is not None and policies:
        await cache.invalidate(ctx, tuple(policies))


async def create(ctx: Any, collection: Collection, input: Mapping[str, Any], invalidates: Iterable[str] = ()) -> Any:
    body = collection.create_body.validate(dict(input))
    created = (await collection.create(ctx, body)).data
    await _invalidate(ctx, invalidates)
    return created


async def update(ctx: Any, collection: Collection, id: str, input: Mapping[str, Any],
                 invalidates: Iterable[str] = ()) -> Any:
    body = collection.update_body.validate(dict(input))
    updated = (await collection.update(ctx, id, body)).data
    await _invalidate(ctx, invalidates)
    return updated


async def delete(ctx: Any, collection: Collection, id: str, invalidates: Iterable[str] = ()) -> bool:
    await collection.delete(ctx, id)
    await _invalidate(ctx, invalidates)
    return True
