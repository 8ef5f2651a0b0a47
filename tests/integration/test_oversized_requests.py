"""Oversized request targets and header blocks answer in the envelope with codes of their own
(issue 9.7), below the bounds where Granian refuses the request itself. Raw sockets: httpx
refuses to send URLs this long."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest


def exchange(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("request_bytes, status, code", [
    (b"GET /health?" + b"q" * 20_000 + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 414, "URI_TOO_LONG"),
    (b"GET /" + b"p" * 20_000 + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 414, "URI_TOO_LONG"),
    (b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 64_000 + b"\r\nConnection: close\r\n\r\n",
     431, "HEADERS_TOO_LARGE"),
    (b"GET /health HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 600) for i in range(60))
     + b"Connection: close\r\n\r\n", 431, "HEADERS_TOO_LARGE"),
])
def test_oversized_requests_get_the_envelope(gateway, request_bytes, status, code):
    got, headers, body = exchange(gateway.url, request_bytes)
    assert got == status
    assert headers["content-type"] == "application/json" and headers["x-request-id"]
    doc = json.loads(body)
    assert doc["success"] is False and doc["code"] == code and doc["message"]
    assert doc["request_id"] == headers["x-request-id"]


def test_requests_under_the_bounds_are_served(gateway):
    ok, _, _ = exchange(gateway.url, b"GET /health HTTP/1.1\r\nHost: t\r\nX-Fine: " + b"f" * 8_000
                        + b"\r\nConnection: close\r\n\r\n")
    assert ok == 200
