from handlers.graphql import GRAPHQL
from runtime import endpoint
from runtime.graphql.openapi import RESPONSE
from runtime.graphql.graphiql import wants_graphiql


# WebSocket upgrades at /graphql are GraphQL subscriptions (graphql-transport-ws).
@endpoint("GET", "/graphql", auth=False, rate_limit=False, tags=("graphql",), response=RESPONSE, upstream=False, websocket=GRAPHQL.websocket)
async def graphql_get(req, ctx):
    """GraphQL queries (not mutations) over GET; GraphiQL for browsers when enabled."""
    page = wants_graphiql(req, ctx)
    if page is not None:
        return page
    return await GRAPHQL.handle(req, ctx)
