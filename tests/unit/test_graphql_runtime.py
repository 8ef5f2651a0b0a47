"""The GraphQL runtime's pure parts: limits, the document cache, DataLoaders, cursors,
media types and the schema's start-up checks."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from handlers.graphql import GRAPHQL
from runtime.config import load_config
from runtime.errors import ValidationFailed
from runtime.graphql import limits
from runtime.graphql.connections import decode_cursor, encode_cursor
from runtime.graphql.documents import Documents
from runtime.graphql.loaders import DataLoader
from runtime.graphql.schema import build
from runtime.graphql.service import GRAPHQL_RESPONSE, JSON, negotiate

SCHEMA = GRAPHQL.schema.schema
CONFIG = load_config(env={}).graphql


def cost(query: str, variables=None) -> limits.Cost:
    prepared = Documents(SCHEMA, CONFIG).prepare(query)
    assert not prepared.errors, prepared.errors
    return limits.measure(SCHEMA, prepared.operation(None), prepared.fragments, variables)


def test_depth_aliases_and_complexity():
    assert cost("{ me { id } }") == limits.Cost(depth=2, aliases=0, complexity=2)
    # employees(first: 50): its children cost 50 each; the department's fields 50 each too.
    c = cost("{ employees(first: 50) { nodes { id department { name } } } }")
    assert c.depth == 4 and c.complexity == 1 + 50 * (1 + 1 + 1 + 1)
    # The SDL default page size (20) when `first` is not given; variables are read.
    assert cost("{ employees { nodes { id } } }").complexity == 1 + 20 * 2
    assert cost("query($n: Int) { employees(first: $n) { nodes { id } } }", {"n": 5}).complexity == 1 + 5 * 2
    # Fragments count where they are spread; aliases are counted.
    c = cost("{ a: me { ...F } b: me { ...F } } fragment F on User { id organization { name } }")
    assert c.aliases == 2 and c.depth == 3 and c.complexity == 2 * 4
    # Introspection is not walked.
    assert cost("{ __schema { types { fields { type { ofType { name } } } } } }").depth == 1


def test_limit_errors_name_the_limit():
    config = SimpleNamespace(max_depth=3, max_aliases=0, max_complexity=10)
    errors = limits.check(limits.Cost(depth=4, aliases=1, complexity=11), config)
    assert [e["extensions"]["code"] for e in errors] == ["QUERY_TOO_DEEP", "TOO_MANY_ALIASES", "QUERY_TOO_COMPLEX"]
    assert errors[0]["extensions"] == {"code": "QUERY_TOO_DEEP", "limit": 3, "actual": 4}
    assert limits.check(limits.Cost(3, 0, 10), config) == []


def test_documents_are_parsed_and_validated_once():
    documents = Documents(SCHEMA, CONFIG)
    first = documents.prepare("{ me { id } }")
    assert documents.prepare("{ me { id } }") is first and documents.parsed == 1
    bad = documents.prepare("{ me { nope } }")
    assert bad.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert documents.prepare("{ me { nope } }") is bad and documents.parsed == 2  # refused from the cache
    assert documents.prepare("{ me {").errors[0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


def test_the_cache_is_bounded():
    documents = Documents(SCHEMA, _config(document_cache_size=2))
    for i in range(3):
        documents.prepare(f"{{ a{i}: me {{ id }} }}")
    documents.prepare("{ a0: me { id } }")  # evicted: parsed again
    assert documents.parsed == 4


def _config(**changes):
    values = {f: getattr(CONFIG, f) for f in CONFIG.__dataclass_fields__}
    return SimpleNamespace(**{**values, **changes})


def test_introspection_can_be_switched_off():
    on = Documents(SCHEMA, CONFIG).prepare("{ __schema { queryType { name } } }")
    off = Documents(SCHEMA, _config(introspection=False)).prepare("{ __schema { queryType { name } } }")
    assert on.errors is None
    assert off.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "introspection" in off.errors[0]["message"].lower()
    assert Documents(SCHEMA, _config(introspection=False)).prepare("{ __typename }").errors is None


def test_size_and_token_limits():
    documents = Documents(SCHEMA, _config(max_document_bytes=100, max_tokens=20))
    assert documents.too_large("{ me { id } }" + " " * 100)["extensions"]["code"] == "DOCUMENT_TOO_LARGE"
    assert documents.too_large("{ me { id } }") is None
    many = documents.prepare("{ " + "me { id } " * 10 + "}")
    assert many.errors[0]["extensions"]["code"] == "TOO_MANY_TOKENS"


def test_a_dataloader_batches_loads_made_across_nested_gathers():
    calls = []

    async def batch(ids):
        calls.append(list(ids))
        return {i: {"id": i} for i in ids if i != "missing"}

    async def main():
        loader = DataLoader(batch)

        async def nested(i):  # like graphql-core: a gather per object, inside a gather per list
            async def field(key):
                await asyncio.sleep(0)
                return await loader.load(key)
            return await asyncio.gather(field(f"d{i % 3}"), field("missing"))

        results = await asyncio.gather(*(nested(i) for i in range(50)))
        assert results[4] == [{"id": "d1"}, None]
        assert await loader.load("d2") == {"id": "d2"}  # answered from this loader's memory
        return loader

    loader = asyncio.run(main())
    assert calls == [["d0", "missing", "d1", "d2"]] and loader.batches == 1


def test_a_failed_batch_fails_its_loads_and_is_retried_later():
    attempts = []

    async def batch(ids):
        attempts.append(ids)
        if len(attempts) == 1:
            raise ValidationFailed("backend said no")
        return {i: i for i in ids}

    async def main():
        loader = DataLoader(batch)
        with pytest.raises(ValidationFailed):
            await loader.load("a")
        assert await loader.load("a") == "a"

    asyncio.run(main())
    assert len(attempts) == 2


def test_cursors_are_opaque_and_checked():
    cursor = encode_cursor("o:40", 7)
    assert "o:40" not in cursor and decode_cursor(cursor) == ("o:40", 7)
    for bad in ("garbage", encode_cursor("x", 0)[:-2] + "!!", "WzEsMl0"):  # WzEsMl0: [1,2]
        with pytest.raises(ValidationFailed) as caught:
            decode_cursor(bad)
        assert "after" in caught.value.errors


@pytest.mark.parametrize("accept, expected", [
    (None, JSON), ("", JSON), ("*/*", JSON), ("application/json", JSON),
    (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE), (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
    ("text/html", None), ("application/xml", None),
])
def test_negotiation(accept, expected):
    assert negotiate(accept) == expected


def test_schema_mismatches_stop_start_up():
    sdl = 'directive @requires(permission: String!) on FIELD_DEFINITION\ndirective @public on FIELD_DEFINITION\n' \
          'type Query { a: Int  b: Int @requires(permission: "x.y:read") }'

    async def a(ctx, parent):
        return 1

    with pytest.raises(ValueError, match=r"Query\.b: no resolver"):
        build(sdl, {("Query", "a"): a})
    with pytest.raises(ValueError, match=r"Query\.c: no such field"):
        build(sdl, {("Query", "a"): a, ("Query", "b"): a, ("Query", "c"): a})
    with pytest.raises(ValueError, match=r"must be domain\.resource:action"):
        build(sdl.replace("x.y:read", "x.*:read"), {("Query", "a"): a, ("Query", "b"): a})
    built = build(sdl, {("Query", "a"): a, ("Query", "b"): a})
    assert built.rule("Query", "b").permission == "x.y:read" and not built.rule("Query", "a").public


def test_declared_fields_are_collected_once_and_never_twice_for_a_field():
    from runtime.graphql.registry import Fields, discover

    found = discover("handlers.graphql.resolvers")
    # Declared in bulk (runtime.graphql.crud), collected once though finance imports crm's.
    assert {("Query", "customers"), ("Mutation", "deleteEmployee"), ("Invoice", "customer")} <= set(found)

    def one(ctx, parent):
        return 1

    with pytest.raises(RuntimeError, match=r"Query\.a: declared twice"):
        Fields({("Query", "a"): one}, {("Query", "a"): one})
