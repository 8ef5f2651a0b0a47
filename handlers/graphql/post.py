from handlers.graphql import GRAPHQL
from runtime import endpoint
from runtime.graphql.openapi import RESPONSE


# auth and rate limit run inside the GraphQL transport, with the same stages, so that a
# refused token or an exhausted budget is answered as GraphQL errors, not a REST envelope.
@endpoint("POST", "/graphql", auth=False, rate_limit=False, tags=("graphql",), response=RESPONSE, upstream=False)
async def graphql_post(req, ctx):
    """GraphQL over HTTP: {query, operationName?, variables?, extensions?} as JSON."""
    return await GRAPHQL.handle(req, ctx)
