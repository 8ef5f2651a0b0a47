"""Revoked access tokens, shared by every gateway instance through Valkey.

A revoked `jti` is stored with an expiry equal to the token's own, so the list never grows
past the tokens still alive. When Valkey is unreachable we fall back to what this worker
revoked itself (fail open for others' revocations, and say so in the logs), because
refusing every request while Valkey is down would turn a cache outage into a full outage.
"""

from __future__ import annotations

import logging
import time

from valkey.asyncio import Valkey
from valkey.exceptions import ValkeyError

log = logging.getLogger("gateway.revocation")


class RevocationList:
    def __init__(self, valkey: Valkey, prefix: str) -> None:
        self.valkey = valkey
        self.prefix = prefix + "revoked:"
        self._local: dict[str, float] = {}  # jti -> expires_at, for when Valkey is down

    async def revoke(self, token_id: str, expires_at: float) -> None:
        self._forget_expired()
        self._local[token_id] = expires_at
        ttl = max(1, int(expires_at - time.time()) + 1)
        try:
            await self.valkey.set(self.prefix + token_id, b"1", ex=ttl)
        except (ValkeyError, OSError) as exc:
            log.warning("revocation not shared: valkey unavailable", extra={"error": str(exc)[:200]})

    async def is_revoked(self, token_id: str) -> bool:
        if token_id in self._local:
            return True
        try:
            return bool(await self.valkey.exists(self.prefix + token_id))
        except (ValkeyError, OSError):
            return False

    def _forget_expired(self) -> None:
        now = time.time()
        for jti in [j for j, exp in self._local.items() if exp < now]:
            del self._local[jti]
