"""GraphQL at /graphql: the schema (schema/*.graphql) and its resolvers (resolvers/), built
once at import, so a field without a resolver stops start-up like a bad route does."""

from pathlib import Path

from runtime.graphql.service import GraphQLService

GRAPHQL = GraphQLService.load(Path(__file__).parent / "schema", "handlers.graphql.resolvers")
