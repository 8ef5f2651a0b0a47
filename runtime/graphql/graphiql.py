"""GraphiQL at GET /graphql for browsers, when `graphql.graphiql` is on.

Its scripts and styles are the npm packages' own files (graphiql, react, react-dom, from
`graphql.graphiql_assets`, installed by `npm install` in clients/js/: tests/peers/js.sh), served by
the gateway under /graphql/assets/: no CDN at run time, since many production networks
block them and tests have no network. Only the listed files are served.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from runtime.errors import NotFound
from runtime.reply import Reply

PROJECT = Path(__file__).resolve().parents[2]

ASSETS = {  # name under /graphql/assets/ -> (path in node_modules, media type)
    "graphiql.min.js": ("graphiql/graphiql.min.js", "text/javascript"),
    "graphiql.min.css": ("graphiql/graphiql.min.css", "text/css"),
    "react.production.min.js": ("react/umd/react.production.min.js", "text/javascript"),
    "react-dom.production.min.js": ("react-dom/umd/react-dom.production.min.js", "text/javascript"),
}

PAGE = b"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>GraphiQL - ERP API Gateway</title>
  <link rel="stylesheet" href="/graphql/assets/graphiql.min.css">
  <style>body { margin: 0; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL...</div>
  <script src="/graphql/assets/react.production.min.js"></script>
  <script src="/graphql/assets/react-dom.production.min.js"></script>
  <script src="/graphql/assets/graphiql.min.js"></script>
  <script>
    // Headers (Authorization: Bearer ...) go in the editor's Headers tab; they stay in
    // this browser's localStorage only.
    const fetcher = GraphiQL.createFetcher({ url: window.location.origin + "/graphql" });
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, { fetcher, shouldPersistHeaders: true, defaultEditorToolsVisibility: "headers" }));
  </script>
</body>
</html>
"""


def wants_graphiql(req: Any, ctx: Any) -> Reply | None:
    """The GraphiQL page for a browser (asking for HTML, sending no query), else None."""
    if not ctx.resources.config.graphql.graphiql or req.get_param("query") is not None:
        return None
    accept = (req.get_header("Accept") or "").lower()
    if "text/html" not in accept:
        return None
    return Reply(PAGE, status=200, media_type="text/html; charset=utf-8",
                 headers={"Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                                                     "style-src 'self' 'unsafe-inline'; img-src 'self' data:"})


@cache
def _read(directory: str, path: str) -> bytes | None:
    file = Path(directory) / path
    if not file.is_absolute():
        file = PROJECT / file
    try:
        return file.read_bytes()
    except OSError:
        return None


def asset(ctx: Any, name: str) -> Reply:
    config = ctx.resources.config.graphql
    known = ASSETS.get(name)
    if not config.graphiql or known is None:
        raise NotFound(f"No GraphiQL asset {name!r}")
    data = _read(config.graphiql_assets, known[0])
    if data is None:
        raise NotFound(f"{known[0]} is not installed under {config.graphiql_assets} "
                       "(run: bash tests/peers/js.sh, or npm install in js/)")
    return Reply(data, status=200, media_type=known[1] + "; charset=utf-8",
                 headers={"Cache-Control": "public, max-age=86400"})
