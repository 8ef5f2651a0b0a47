from handlers.graphql import GRAPHQL
from runtime import endpoint
from runtime.graphql.openapi import RESPONSE
from runtime.graphql.graphiql import wants_graphiql
from runtime.schema import Body, text

# GraphQL over HTTP's GET parameters (variables and extensions are JSON text); their own
# limits and errors are the GraphQL transport's (graphql.max_document_bytes, ...).
PARAMETERS = Body("GraphQLGetParameters", {
    "query": text(0, 1_048_576, required=False, doc="The GraphQL document (a query; no mutation over GET)"),
    "operationName": text(0, 1_000, required=False, doc="Which operation of the document to run"),
    "variables": text(0, 1_048_576, required=False, doc="JSON object of variable values"),
    "extensions": text(0, 65_536, required=False, doc="JSON object, e.g. {persistedQuery: {version, sha256Hash}}"),
})


# WebSocket upgrades at /graphql are GraphQL subscriptions (graphql-transport-ws).
@endpoint("GET", "/graphql", auth=False, rate_limit=False, tags=("graphql",), query=PARAMETERS, response=RESPONSE,
          upstream=False, websocket=GRAPHQL.websocket)
async def graphql_get(req, ctx):
    """GraphQL queries (not mutations) over GET; GraphiQL for browsers when enabled."""
    page = wants_graphiql(req, ctx)
    if page is not None:
        return page
    return await GRAPHQL.handle(req, ctx)
