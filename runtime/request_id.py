"""X-Request-ID: taken from the caller when well-formed, otherwise generated."""

from __future__ import annotations

import re
import uuid

# Well-formed: what tracing systems and load balancers emit (UUIDs, hex, base64url-ish ids),
# bounded so a hostile header cannot flood logs or break log parsers.
PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"  # also what /openapi.json promises (a uuid4 hex when generated)
_WELL_FORMED = re.compile(PATTERN)  # with fullmatch: `$` alone would let a newline through


def request_id(incoming: str | None) -> str:
    if incoming and _WELL_FORMED.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex
