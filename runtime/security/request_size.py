"""Limits on the request target and the header block, checked before anything else.

Granian refuses only far larger requests itself (a URI over ~64 KiB, headers over its
~400 KiB HTTP/1 buffer), and answers those with a bare status line the application never
sees. Below that, these limits answer in our envelope, with a code of their own:
414 `URI_TOO_LONG` and 431 `HEADERS_TOO_LARGE`. The bounds are generous for a JSON API
(nginx's default header buffer is 8 KiB; the longest legitimate query here, a page token and
filters, is well under 2 KiB).
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from runtime.errors import HeadersTooLarge, UriTooLong

MAX_URI_BYTES = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024


def check_request_size(scope: dict[str, Any]) -> None:
    """Raise UriTooLong or HeadersTooLarge for an ASGI request over the limits."""
    path = scope.get("raw_path") or scope.get("path", "").encode()
    if len(path) + len(scope.get("query_string") or b"") > MAX_URI_BYTES:
        raise UriTooLong(f"The request URI is longer than {MAX_URI_BYTES} bytes")
    headers = scope.get("headers") or ()
    # "name: value\r\n" per field, as on the wire; one C-level pass, not a loop in Python.
    if sum(map(len, chain.from_iterable(headers))) + 4 * len(headers) > MAX_HEADER_BYTES:
        raise HeadersTooLarge(f"The request's header fields are larger than {MAX_HEADER_BYTES} bytes in all")
