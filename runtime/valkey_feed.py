"""A Valkey client of its own for a pub/sub feed (revocations, realtime fan-out).

A subscribed connection can run nothing else, and it must not hold one of the shared pool's
connections for the worker's lifetime: each feed gets a pool of its own, with the same
server settings."""

from __future__ import annotations

from valkey.asyncio import ConnectionPool, Valkey


def feed_client(shared: Valkey) -> Valkey:
    pool = shared.connection_pool
    return Valkey(connection_pool=ConnectionPool(connection_class=pool.connection_class, max_connections=2,
                                                 **pool.connection_kwargs))
