"""The WebSocket baseline: a bare ASGI app on Granian (no Falcon, no gateway), which accepts
every socket, keeps it in a set and, on `POST /broadcast`, sends the body to each in turn.
What a gateway socket costs above this one is the cost of our own code.

    granian --interface asgi --factory loadtests.bench.ws_bare_app:create_app
"""

from __future__ import annotations


def create_app():
    sockets: set = set()

    async def app(scope, receive, send):
        kind = scope["type"]
        if kind == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        if kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            sockets.add(send)
            try:
                while (await receive())["type"] != "websocket.disconnect":
                    pass
            finally:
                sockets.discard(send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/broadcast":
            text = body.decode()
            for target in list(sockets):
                try:
                    await target({"type": "websocket.send", "text": text})
                except Exception:
                    sockets.discard(target)
        answer = b'{"sockets": %d}' % len(sockets)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    return app
