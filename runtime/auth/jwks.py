"""The signing keys of the auth service, fetched from its JWKS and cached.

- Keys are refreshed after `cache_duration`; a failed refresh keeps the keys we have, so
  tokens signed by known keys keep working while the JWKS host is down.
- An unknown `kid` triggers a refetch at most once per `refetch_interval`, however many
  tokens with random `kid`s arrive: one fetch in flight, the rest wait for it or are refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from typing import Any, Callable

import jwt

log = logging.getLogger("gateway.jwks")

# Key types we accept, by the algorithm family they serve.
_KTY_FOR_ALG = {"RS": "RSA", "PS": "RSA", "ES": "EC"}
_MAX_JWKS_BYTES = 256 * 1024


def fetch_jwks(url: str, timeout: float) -> dict[str, Any]:
    """Blocking fetch; run in a thread. Only http(s) URLs from configuration reach here."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (configured URL)
        return json.loads(answer.read(_MAX_JWKS_BYTES))


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        algorithms: tuple[str, ...],
        cache_duration: float,
        refetch_interval: float,
        timeout: float = 5.0,
        fetch: Callable[[str, float], dict[str, Any]] = fetch_jwks,
    ) -> None:
        self.url = url
        self.algorithms = algorithms
        self.cache_duration = cache_duration
        self.refetch_interval = refetch_interval
        self.timeout = timeout
        self._fetch = fetch
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")  # last successful fetch
        self._attempted_at = float("-inf")  # last attempt, successful or not
        self._lock = asyncio.Lock()
        self.fetches = 0

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    async def key(self, kid: str) -> jwt.PyJWK | None:
        now = time.monotonic()
        stale = now - self._fetched_at > self.cache_duration
        if kid in self._keys and not stale:
            return self._keys[kid]
        # Unknown kid or stale keys: refresh, but never more often than refetch_interval.
        if now - self._attempted_at >= self.refetch_interval or (stale and not self._keys):
            await self._refresh(now)
        return self._keys.get(kid)

    async def _refresh(self, asked_at: float) -> None:
        async with self._lock:
            if self._attempted_at >= asked_at:
                return  # someone refreshed while we waited for the lock
            self._attempted_at = time.monotonic()
            self.fetches += 1
            try:
                document = await asyncio.to_thread(self._fetch, self.url, self.timeout)
                keys = self._parse(document)
            except Exception as exc:  # network, JSON or shape: keep the keys we have
                log.warning("jwks refresh failed", extra={"url": self.url, "error": str(exc)[:200]})
                return
            self._keys = keys
            self._fetched_at = time.monotonic()

    def _parse(self, document: dict[str, Any]) -> dict[str, jwt.PyJWK]:
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            kid, alg, kty = entry.get("kid"), entry.get("alg"), entry.get("kty")
            if not isinstance(kid, str) or entry.get("use", "sig") != "sig":
                continue
            if alg is not None and alg not in self.algorithms:
                continue
            if kty not in {_KTY_FOR_ALG[a[:2]] for a in self.algorithms}:
                continue
            try:
                keys[kid] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue
        if not keys:
            raise ValueError("JWKS holds no usable signing key")
        return keys
