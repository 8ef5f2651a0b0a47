"""Following a Valkey pub/sub channel (revocations, realtime fan-out), in both server modes.

A subscribed connection can run nothing else, and it must not hold one of the shared pool's
connections for the worker's lifetime: each feed gets a client of its own, with the same
server settings (in sentinel mode: the primary the sentinels name at each attempt, so a
feed lost in a failover resubscribes on the new primary). In a cluster (the shared client
is a ValkeyCluster) PUBLISH reaches the subscribers of every node, so the feed subscribes on
any one node, the next one after each loss (the node it was on may be the one that died).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Awaitable, Callable

from valkey.asyncio import ConnectionPool, Valkey

log = logging.getLogger("gateway.valkey")


def feed_client(shared: Any, attempt: int = 0) -> Valkey:
    """A client of its own for one subscription: to the shared client's server, or (cluster)
    to one of its nodes, a different one on each attempt."""
    if hasattr(shared, "get_nodes"):  # valkey.asyncio.cluster.ValkeyCluster
        nodes = shared.get_nodes() or shared.nodes_manager.startup_nodes.values()
        node = sorted(nodes, key=lambda n: n.name)[attempt % len(nodes)]
        kwargs = {k: v for k, v in node.connection_kwargs.items() if k not in ("host", "port")}
        return Valkey(connection_pool=ConnectionPool(connection_class=node.connection_class, max_connections=2,
                                                     host=node.host, port=node.port, **kwargs))
    pool = shared.connection_pool
    manager = getattr(pool, "sentinel_manager", None)
    if manager is not None:  # valkey.asyncio.sentinel: the primary the sentinels name now
        kwargs = {k: v for k, v in pool.connection_kwargs.items() if k != "connection_pool"}
        return manager.master_for(pool.service_name, max_connections=2, **kwargs)
    return Valkey(connection_pool=ConnectionPool(connection_class=pool.connection_class, max_connections=2,
                                                 **pool.connection_kwargs))


async def follow(shared: Any, channel: str, listen: Callable[[Any], Awaitable[None]], *,
                 live: Callable[[], bool], lost: Callable[[], None], what: str) -> None:
    """Hold one subscription to `channel` for ever: `listen(pubsub)` reads it until it fails;
    then `lost()`, and subscribe again, 0.1 s after losing a live feed (`live()`), backing off
    to 2 s while it cannot be set up. Cancel the task to stop."""
    backoff, attempt = 0.1, 0
    if hasattr(shared, "get_nodes"):
        with contextlib.suppress(Exception):
            await shared.initialize()  # the node list; without it the seeds are used
    while True:
        feed = feed_client(shared, attempt)
        pubsub = feed.pubsub()
        try:
            await pubsub.subscribe(channel)
            await listen(pubsub)
        except Exception as exc:  # connection, timeout, protocol: start over
            was_live = live()
            if was_live:
                log.warning(f"{what} lost; resubscribing", extra={"error": str(exc)[:200]})
            backoff = 0.1 if was_live else min(backoff * 2, 2.0)
            attempt += 1
        finally:
            lost()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await feed.aclose()
                await feed.connection_pool.aclose()
        await asyncio.sleep(backoff)
