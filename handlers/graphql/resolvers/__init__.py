"""Resolvers, one module per domain; each function resolves one field (runtime.graphql.resolver)."""
