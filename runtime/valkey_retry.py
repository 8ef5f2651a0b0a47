"""`redis.max_retries` for the valkey-py client (the revocation feed's SCAN and MGET, the
health check): a command whose connection was lost or timed out is sent again on a fresh
connection, up to that many times, after an exponential backoff capped at `redis.timeout`.

ValkeyCluster (`redis.mode: cluster`) retries differently: its nodes' connections use the
`retry` only to connect, and a command is sent again by the cluster client itself
(`cluster_error_retry_attempts`, also on CLUSTERDOWN) after refreshing the slot map, which
takes the place of the backoff (valkey-py waits 0.25 s only after CLUSTERDOWN).

Not for the request path: its multiplexed connection (runtime.valkey_mux) never retries a
command, it skips Valkey for `redis.breaker_cooldown` instead, so a request never waits out
retries on a Valkey that is down.
"""

from __future__ import annotations

from typing import Any

from valkey.asyncio.retry import Retry
from valkey.backoff import ExponentialBackoff
from valkey.exceptions import ConnectionError, TimeoutError

FIRST_BACKOFF = 0.05  # seconds, doubling per attempt


def command_retries(max_retries: int, timeout: float) -> dict[str, Any]:
    """Connection-pool keyword arguments: retry lost connections and timeouts `max_retries` times."""
    return {"retry": Retry(ExponentialBackoff(cap=timeout, base=FIRST_BACKOFF), max_retries),
            "retry_on_error": [ConnectionError, TimeoutError]}


def cluster_retries(max_retries: int, timeout: float) -> dict[str, Any]:
    """ValkeyCluster keyword arguments: the same `max_retries` for its commands and its connects."""
    return {"cluster_error_retry_attempts": max_retries, "connection_error_retry_attempts": max_retries,
            **command_retries(max_retries, timeout)}
