"""CORS decisions from the `cors:` configuration (Fetch standard, CORS protocol).

Pure: given the request's Origin and preflight headers, say which headers to answer with.
A disallowed origin gets no CORS header at all, so the browser refuses the response; its
preflight is answered 403 with the error envelope (a plain 204 would work the same for a
browser, but 403 tells a developer with curl what went wrong).
"""

from __future__ import annotations

import re
from typing import Any

Headers = list[tuple[str, str]]

_HEADER_LIST = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$")  # RFC 9110 tokens


class Cors:
    def __init__(self, config: Any) -> None:
        self.origins = frozenset(config.allowed_origins)
        self.any_origin = "*" in self.origins  # config forbids it together with credentials
        self.credentials = config.allow_credentials
        self.methods = tuple(config.allowed_methods)
        self.reflect_headers = "*" in config.allowed_headers
        self.allowed_headers = ", ".join(config.allowed_headers)
        self.exposed = ", ".join(config.exposed_headers)
        self.max_age = str(int(config.max_age))

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    def _origin_headers(self, origin: str) -> Headers:
        if self.any_origin and not self.credentials:
            return [("Access-Control-Allow-Origin", "*")]
        # Echo the one origin (never `*` with credentials); caches must key on it.
        out = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        if self.credentials:
            out.append(("Access-Control-Allow-Credentials", "true"))
        return out

    def preflight(self, origin: str, request_headers: str | None, methods: list[str] | None = None) -> Headers | None:
        """Headers for a 204 preflight answer, or None when the origin is not allowed.
        `methods`: the route's; only those the configuration allows too are listed."""
        if not self.allows(origin):
            return None
        out = self._origin_headers(origin)
        listed = self.methods if methods is None else [m for m in methods if m in self.methods or m == "HEAD"]
        out.append(("Access-Control-Allow-Methods", ", ".join(listed)))
        if self.reflect_headers:
            # Reflected only when it is a plausible list of header names: never echo unbounded input.
            if request_headers and len(request_headers) <= 1024 and _HEADER_LIST.match(request_headers):
                out += [("Access-Control-Allow-Headers", request_headers), ("Vary", "Access-Control-Request-Headers")]
        else:
            out.append(("Access-Control-Allow-Headers", self.allowed_headers))
        out.append(("Access-Control-Max-Age", self.max_age))
        return out

    def actual(self, origin: str) -> Headers:
        """Headers for a response to an actual (non-preflight) cross-origin request."""
        if not self.allows(origin):
            return [("Vary", "Origin")] if not self.any_origin else []
        out = self._origin_headers(origin)
        if self.exposed:
            out.append(("Access-Control-Expose-Headers", self.exposed))
        return out
