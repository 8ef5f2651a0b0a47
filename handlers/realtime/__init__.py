"""Realtime: the REST publish endpoint (the WebSocket itself is runtime/realtime/socket.py)."""
