"""X-Request-ID: taken from the caller when well-formed, otherwise generated."""

from __future__ import annotations

import os
import re

# Well-formed: what tracing systems and load balancers emit (UUIDs, hex, base64url-ish ids),
# bounded so a hostile header cannot flood logs or break log parsers.
PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"  # also what /openapi.json promises (a uuid4 hex when generated)
_WELL_FORMED = re.compile(PATTERN)  # with fullmatch: `$` alone would let a newline through


def new_request_id() -> str:
    """uuid.uuid4().hex without building a UUID object (~5x cheaper, loadtests/README.md): 122
    random bits, the version (4) and RFC 4122 variant bits set as uuid.UUID(version=4) sets them."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    return raw.hex()


def request_id(incoming: str | None) -> str:
    if incoming and _WELL_FORMED.fullmatch(incoming):
        return incoming
    return new_request_id()
