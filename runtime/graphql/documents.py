"""Parsed and validated documents, cached per worker; automatic persisted queries.

Validation costs ~10x what executing a small query does (NOTES.md), so a document is
parsed and validated once per worker and kept (LRU, `graphql.document_cache_size`),
with its outcome: a repeated invalid document is refused without parsing it again. The
size limit is checked before parsing and the token limit during it, so a huge or
pathological document never reaches the validator.

Automatic persisted queries (the Apollo protocol): a client sends only
`extensions.persistedQuery.sha256Hash`; an unknown hash answers `PersistedQueryNotFound`,
and the client sends the query with the hash once, which registers it for every worker
and instance (in Valkey for `graphql.persisted_query_ttl`, and in this worker's memory).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError, GraphQLSchema, parse, specified_rules, validate
from graphql.language import DocumentNode, FragmentDefinitionNode, OperationDefinitionNode
from graphql.validation import NoSchemaIntrospectionCustomRule
from valkey.exceptions import ValkeyError

from runtime.graphql.errors import PARSE_FAILED, VALIDATION_FAILED, request_error

log = logging.getLogger("gateway.graphql")


@dataclass
class Prepared:
    """A document ready to execute, or the request errors that stop it."""

    document: DocumentNode | None = None
    errors: list[dict[str, Any]] | None = None
    operations: dict[str | None, OperationDefinitionNode] = field(default_factory=dict)
    fragments: dict[str, FragmentDefinitionNode] = field(default_factory=dict)
    costs: dict[str | None, Any] = field(default_factory=dict)  # of operations without variables

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        if name is None and len(self.operations) == 1:
            return next(iter(self.operations.values()))
        return self.operations.get(name)


def _located(error: GraphQLError, code: str) -> dict[str, Any]:
    doc: dict[str, Any] = dict(error.formatted)
    doc["extensions"] = {**(doc.get("extensions") or {}), "code": code}
    return doc


class Documents:
    def __init__(self, schema: GraphQLSchema, config: Any) -> None:
        self.schema = schema
        self.max_bytes = config.max_document_bytes
        self.max_tokens = config.max_tokens
        self.size = config.document_cache_size
        self.rules = list(specified_rules)
        if not config.introspection:
            self.rules.append(NoSchemaIntrospectionCustomRule)
        self._cache: OrderedDict[str, Prepared] = OrderedDict()
        self.parsed = 0  # documents parsed and validated (cache misses)

    def too_large(self, query: str) -> dict[str, Any] | None:
        size = len(query.encode()) if len(query) * 4 > self.max_bytes else len(query)
        if size > self.max_bytes:
            return request_error(f"The query document is {size} bytes; the limit is {self.max_bytes}",
                                 "DOCUMENT_TOO_LARGE", limit=self.max_bytes)
        return None

    def prepare(self, query: str) -> Prepared:
        prepared = self._cache.get(query)
        if prepared is not None:
            self._cache.move_to_end(query)
            return prepared
        prepared = self._prepare(query)
        if self.size:
            self._cache[query] = prepared
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return prepared

    def _prepare(self, query: str) -> Prepared:
        self.parsed += 1
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError as error:
            code = "TOO_MANY_TOKENS" if "tokens" in error.message and "Parsing aborted" in error.message else PARSE_FAILED
            return Prepared(errors=[_located(error, code)])
        errors = validate(self.schema, document, self.rules)
        if errors:
            return Prepared(errors=[_located(e, VALIDATION_FAILED) for e in errors])
        prepared = Prepared(document)
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                prepared.operations[definition.name.value if definition.name else None] = definition
            elif isinstance(definition, FragmentDefinitionNode):
                prepared.fragments[definition.name.value] = definition
        return prepared


class PersistedQueries:
    """sha256 -> query text: in this worker's memory, and in Valkey for every worker."""

    def __init__(self, valkey: Any, prefix: str, ttl: float, size: int = 1000) -> None:
        self.valkey = valkey
        self.prefix = prefix + "apq:"
        self.ttl = max(1, int(ttl))
        self.size = size
        self._local: OrderedDict[str, str] = OrderedDict()

    @staticmethod
    def digest(query: str) -> str:
        return hashlib.sha256(query.encode()).hexdigest()

    async def lookup(self, sha256: str) -> str | None:
        query = self._local.get(sha256)
        if query is not None:
            return query
        try:
            raw = await self.valkey.get(self.prefix + sha256)
        except (ValkeyError, OSError) as exc:
            log.warning("persisted queries: Valkey unavailable", extra={"error": str(exc)[:200]})
            return None
        if raw is None:
            return None
        query = raw.decode()
        self._remember(sha256, query)
        return query

    async def register(self, sha256: str, query: str) -> None:
        self._remember(sha256, query)
        try:
            await self.valkey.set(self.prefix + sha256, query, ex=self.ttl)
        except (ValkeyError, OSError) as exc:
            log.warning("persisted queries: Valkey unavailable", extra={"error": str(exc)[:200]})

    def _remember(self, sha256: str, query: str) -> None:
        self._local[sha256] = query
        if len(self._local) > self.size:
            self._local.popitem(last=False)
