"""GraphQL at /graphql: a schema-first schema (SDL files under handlers/graphql/schema/) whose
fields are resolved by small functions under handlers/graphql/resolvers/, executed with the
same principal, RBAC, tenancy, backends and cache as REST."""

from runtime.graphql.registry import resolver, subscriber

__all__ = ["resolver", "subscriber"]
