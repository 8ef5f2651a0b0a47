"""The baseline: a bare Falcon ASGI app with one JSON route, served by the same Granian flags
as the gateway. What the gateway loses against it is the cost of our own code.

    granian --interface asgi --factory loadtests.bench.hello_app:create_app
"""

from __future__ import annotations

import falcon
import falcon.asgi


class Hello:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        # Roughly the size of the gateway's /health envelope, so the bytes on the wire match.
        resp.media = {"success": True, "message": "hello", "data": {"status": "ok"}}


def create_app() -> falcon.asgi.App:
    app = falcon.asgi.App()
    app.add_route("/", Hello())
    return app
