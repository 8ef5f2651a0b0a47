"""Resolver building blocks over a REST `Collection`: one record (through the REST route's
cache entry), a related record (through this request's DataLoader), and writes (validated
by the REST body schema, then the REST route's cache invalidation).

Most of a domain's fields are the same few shapes, so a resolvers module declares them
instead of writing each out (discovery collects a module's `Fields` like its @resolver
functions):

    CUSTOMERS = Resource(customers.CUSTOMERS, "/api/v1/crm/customers", "crm_customers")
    FIELDS = Fields(
        root(CUSTOMERS, one="customer", many="customers", writes="Customer"),  # + create/update/delete
        {("Customer", "contacts"): children(CONTACTS, "customer_id"),          # a filtered connection
         ("Contact", "customer"): reference(CUSTOMERS, "customer_id")},        # batched by DataLoader
    )
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from runtime.errors import NotFound
from runtime.graphql.connections import cached, connection
from runtime.graphql.registry import Fields
from runtime.rest import Collection

__all__ = ["connection", "get", "related", "create", "update", "delete", "Resource", "Fields", "root",
           "children", "reference"]


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


# -- declared fields ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Resource:
    """A REST collection as GraphQL reads it: through the REST route's cache policy, under the
    REST URL's key (`path`), so both share entries and invalidation."""

    collection: Collection
    path: str
    cache: str | None = None


def root(resource: Resource, *, one: str, many: str, writes: str | None = None) -> Fields:
    """`Query.<one>(id)`, `Query.<many>(first, after, ...filters)` and, with `writes="Customer"`,
    `Mutation.createCustomer(input)`, `updateCustomer(id, input)`, `deleteCustomer(id)`."""
    collection, invalidates = resource.collection, (resource.cache,) if resource.cache else ()

    def read_one(ctx: Any, parent: Any, id: str) -> Any:
        return get(ctx, collection, id, resource.path, resource.cache)

    def read_many(ctx: Any, parent: Any, first: int, after: str | None = None, **filters: Any) -> Any:
        return connection(ctx, collection, resource.path, first=first, after=after, cache=resource.cache,
                          filters=filters)

    fields = Fields({("Query", one): read_one, ("Query", many): read_many})
    if writes:
        fields[("Mutation", f"create{writes}")] = lambda ctx, parent, input: create(
            ctx, collection, input, invalidates)
        fields[("Mutation", f"update{writes}")] = lambda ctx, parent, id, input: update(
            ctx, collection, id, input, invalidates)
        fields[("Mutation", f"delete{writes}")] = lambda ctx, parent, id: delete(ctx, collection, id, invalidates)
    return fields


def children(resource: Resource, by: str) -> Callable[..., Any]:
    """A connection of the records whose `by` field is the parent's id (a customer's deals)."""

    def resolve(ctx: Any, parent: Mapping[str, Any], first: int, after: str | None = None) -> Any:
        return connection(ctx, resource.collection, resource.path, first=first, after=after, cache=resource.cache,
                          filters={by: parent["id"]})

    return resolve


def reference(resource: Resource, field: str) -> Callable[..., Any]:
    """The record the parent's `field` points at, batched (an employee's department)."""

    def resolve(ctx: Any, parent: Mapping[str, Any]) -> Any:
        return related(ctx, resource.collection, parent.get(field))

    return resolve
