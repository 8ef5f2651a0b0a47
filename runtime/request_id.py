"""X-Request-ID: taken from the caller when well-formed, otherwise generated."""

from __future__ import annotations

import os
import re

# Well-formed: what tracing systems and load balancers emit (UUIDs, hex, base64url-ish ids),
# bounded so a hostile header cannot flood logs or break log parsers.
PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"  # also what /openapi.json promises (a uuid4 hex when generated)
_WELL_FORMED = re.compile(PATTERN)  # with fullmatch: `$` alone would let a newline through


# Random bytes drawn 4 KiB at a time: one getrandom() syscall per 256 ids instead of one per
# request (~0.4 µs a request, more in a loaded worker). Emptied in a forked child, so that two
# workers never hand out the same bytes.
_POOL_SIZE = 4096
_pool = b""
_taken = 0


def _forget_pool() -> None:
    global _pool, _taken
    _pool, _taken = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def new_request_id() -> str:
    """uuid.uuid4().hex without building a UUID object (~5x cheaper, loadtests/README.md): 122
    random bits, the version (4) and RFC 4122 variant bits set as uuid.UUID(version=4) sets them."""
    global _pool, _taken
    at = _taken
    if at >= len(_pool):
        _pool, at = os.urandom(_POOL_SIZE), 0
    _taken = at + 16
    raw = bytearray(_pool[at:at + 16])
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    return raw.hex()


def request_id(incoming: str | None) -> str:
    if incoming and _WELL_FORMED.fullmatch(incoming):
        return incoming
    return new_request_id()
