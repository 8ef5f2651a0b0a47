"""The signing keys of the auth service, fetched from its JWKS and cached.

Every fetch, whatever asked for it, is gated by one clock: at most one per
`refetch_interval` (one per `empty_retry` while we hold no key at all, so a gateway that
started before the auth service recovers quickly; with no keys nothing can be verified, so
there is nothing to protect). One fetch is in flight at a time; whoever asks meanwhile
waits for that one (no thundering herd).

- Known `kid`: answered from memory, always. Once keys are older than `cache_duration`
  a refresh starts in the background (stale-while-revalidate); if it fails we keep the
  keys we have (stale-while-error), so known keys keep working while the JWKS host is down.
- Unknown `kid` (a rotation, or garbage): waits for a refetch only if the gate allows one,
  else is refused at once. A flood of random `kid`s therefore costs at most one fetch per
  interval, through this path and the staleness path alike.
- A successful fetch replaces the key set: a key the auth service stops publishing stops
  verifying at once, tokens it signed that were verified earlier included (TokenVerifier
  checks the key of a cached token on every hit).
- A poll on a schedule (`poll_interval`, outside the unknown-kid gate): a rotation or a
  withdrawn key is seen within one interval whatever else happens. Without it a stranger's
  junk token with a random `kid` could spend the unknown-kid allowance just before a genuine
  rotation and keep the new key out for a whole `refetch_interval`. An unknown `kid` that
  finds the gate closed waits for that poll (at most one interval) rather than being
  refused at once, so the first token of a new key is accepted.
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

Fetch = Callable[[str, float], dict[str, Any]]


def fetch_jwks(url: str, timeout: float) -> dict[str, Any]:
    """Blocking fetch; run in a thread. Only http(s) URLs from configuration reach here."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # a configured http(s) URL
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
        empty_retry: float = 1.0,
        poll_interval: float = 0.0,
        fetch: Fetch = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.algorithms = algorithms
        self.cache_duration = cache_duration
        self.refetch_interval = refetch_interval
        self.timeout = timeout
        self.empty_retry = min(empty_retry, refetch_interval)
        self.poll_interval = poll_interval  # 0: no scheduled refetch
        self._fetch = fetch
        self._clock = clock
        self._kty = {_KTY_FOR_ALG[a[:2]] for a in algorithms}
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")  # last successful fetch
        self._attempted_at = float("-inf")  # last fetch started, successful or not
        self._inflight: asyncio.Task | None = None
        self._poller: asyncio.Task | None = None
        self._polled: asyncio.Future | None = None  # resolved when the next scheduled poll is done
        self._failing = False  # the last fetch failed (logged once per transition)
        self.fetches = 0

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def has(self, kid: str) -> bool:
        """Whether `kid` is published now (a dict lookup: checked on every cached-token hit)."""
        return kid in self._keys

    def start(self) -> None:
        """Fetch in the background now, so the first request does not pay for it; then poll."""
        self._refresh_if_allowed()
        if self.poll_interval > 0 and self._poller is None:
            loop = asyncio.get_running_loop()
            self._polled = loop.create_future()  # from now on an unknown kid can wait for a poll
            self._poller = loop.create_task(self._poll())

    async def close(self) -> None:
        for task in (self._poller, self._inflight):
            if task is not None:
                task.cancel()
        self._poller = self._inflight = None
        if self._polled is not None and not self._polled.done():
            self._polled.set_result(None)

    async def _poll(self) -> None:
        """Refetch every `poll_interval`, beside (not counted against) the unknown-kid gate."""
        loop = asyncio.get_running_loop()
        while True:
            polled = self._polled
            if polled is None or polled.done():
                polled = self._polled = loop.create_future()
            try:
                await asyncio.sleep(self.poll_interval)
                task = self._inflight
                if task is None:
                    task = self._inflight = loop.create_task(self._refresh())
                await asyncio.shield(task)
            finally:  # cancelled at shutdown too: nobody may wait for a poll that never comes
                if not polled.done():
                    polled.set_result(None)

    async def key(self, kid: str) -> jwt.PyJWK | None:
        key = self._keys.get(kid)
        if key is not None:
            if self._clock() - self._fetched_at > self.cache_duration:
                self._refresh_if_allowed()  # not awaited: the known key answers now
            return key
        task = self._refresh_if_allowed() or self._inflight or self._polled
        if task is not None:
            # The fetch this request started or found, else (the gate is closed) the next
            # scheduled poll, at most `poll_interval` away: a token of a genuinely new key is
            # accepted on its first request, not refused until someone else fetched. A junk kid
            # waits as long, then is refused. Shielded: a cancelled request cancels nothing shared.
            await asyncio.shield(task)
        return self._keys.get(kid)

    def _refresh_if_allowed(self) -> asyncio.Task | None:
        """Start a fetch if none is in flight and the gate allows one; the task, or None."""
        if self._inflight is not None:
            return None
        now = self._clock()
        gap = self.refetch_interval if self._keys else self.empty_retry
        if now - self._attempted_at < gap:
            return None
        self._attempted_at = now
        self._inflight = asyncio.get_running_loop().create_task(self._refresh())
        return self._inflight

    async def _refresh(self) -> None:
        self.fetches += 1
        try:
            document = await asyncio.to_thread(self._fetch, self.url, self.timeout)
            keys = self._parse(document)
        except Exception as exc:  # network, JSON or shape: keep the keys we have
            if not self._failing:  # once per outage, not once per poll
                log.warning("jwks refresh failed: keeping the keys we have", extra={"url": self.url, "error": str(exc)[:200]})
            self._failing = True
        else:
            withdrawn = self._keys.keys() - keys.keys()
            if withdrawn and self._keys:
                log.warning("jwks keys withdrawn: their tokens are refused from now on",
                            extra={"kids": sorted(withdrawn)[:10]})
            if self._failing:
                log.warning("jwks refresh works again", extra={"url": self.url})
            self._failing = False
            self._keys = keys
            self._fetched_at = self._clock()
        finally:
            self._inflight = None

    def _parse(self, document: dict[str, Any]) -> dict[str, jwt.PyJWK]:
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            if not isinstance(entry, dict):
                continue
            kid, alg = entry.get("kid"), entry.get("alg")
            if not isinstance(kid, str) or entry.get("use", "sig") != "sig":
                continue
            if (alg is not None and alg not in self.algorithms) or entry.get("kty") not in self._kty:
                continue
            try:
                keys[kid] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue
        if not keys:
            raise ValueError("JWKS holds no usable signing key")
        return keys
