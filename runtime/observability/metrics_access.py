"""Who may read /metrics: an optional bearer token and an optional list of client networks.

Both are off by default (as under `gw serve`): the metrics carry no personal data, but they do
tell an outsider the routes, the error rates and which backend is failing, so an operator who
cannot keep /metrics on a monitoring network turns one or both on:

    observability:
      metrics:
        token: "<a long random string>"      # Prometheus: authorization: {credentials: ...}
        allowed_networks: ["10.0.0.0/8"]      # the scrapers' addresses

A request must pass every check that is on. The address is the resolved client address (behind
`server.trusted_proxies`, the one they vouch for), refused with 403; a missing or wrong token is
refused with 401 and `WWW-Authenticate: Bearer`. The token is compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache
from typing import Any

from runtime.errors import Forbidden, Unauthenticated
from runtime.security.client_ip import Network, in_networks


@lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in allowed)


def check_metrics_access(settings: Any, client_ip: str, authorization: str | None) -> None:
    """Raise the envelope's 403 or 401 unless `settings` (observability.metrics) let this client in."""
    if settings.allowed_networks and not in_networks(client_ip, _networks(settings.allowed_networks)):
        raise Forbidden("Metrics are not served to your address (observability.metrics.allowed_networks)")
    if settings.token:
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), settings.token.encode()):
            raise Unauthenticated("Metrics need the bearer token of observability.metrics.token")
