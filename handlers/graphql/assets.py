from runtime import endpoint
from runtime.graphql.openapi import ASSET
from runtime.graphql.graphiql import asset


@endpoint("GET", "/graphql/assets/{name}", auth=False, tags=("graphql",), response=ASSET, upstream=False)
async def graphiql_asset(req, ctx, name):
    """GraphiQL's scripts and styles, from the npm-installed packages (no CDN at run time)."""
    return asset(ctx, name)
