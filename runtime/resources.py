"""What one worker holds for its whole life: configuration, clients, caches.

Built in the ASGI lifespan, after Granian has forked the worker, because neither a gRPC
channel nor a Valkey connection pool may cross a fork.
"""

from __future__ import annotations

import asyncio
from typing import Any
import ipaddress
import logging

import valkey.asyncio as valkey_asyncio

from runtime.auth.jwks import JwksCache, fetch_jwks
from runtime.auth.revocation import RevocationList
from runtime.auth.tokens import TokenVerifier
from runtime.backends.client import Backends, CallPolicy
from runtime.backends.health import HealthMonitor, grpc_health_check
from runtime.cache import Cache
from runtime.config import Config
from runtime.domains import declared
from runtime.events import open_publisher
from runtime.observability import metrics
from runtime.rbac import Policy
from runtime.security.account_lockout import AccountLockout
from runtime.near_cache import NearCache
from runtime.realtime.hub import Hub
from runtime.security.ratelimit import RateLimiter
from runtime.security.synced_limits import SyncedLimiter
from runtime.idempotency import IdempotencyStore
from runtime.valkey_cluster import ClusterMux, ClusterTracker
from runtime.valkey_mux import Tracker, ValkeyMux, parse_address
from runtime.valkey_retry import cluster_retries, command_retries


log = logging.getLogger("gateway")


def _loopback(target: str) -> bool:
    host = target.rpartition(":")[0].strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Resources:
    def __init__(self, config: Config) -> None:
        self.config = config
        r = config.redis
        # valkey-py for what is off the request path (pub/sub feeds, SCAN; health), and the
        # request path's multiplexed client (rate limits, cache, revocation checks and logout):
        # one shared, pipelined connection; half valkey-py's CPU per call, and most of what is
        # left is the kernel's round trip. In cluster mode both follow the cluster's slot map
        # (runtime.valkey_cluster; the feeds subscribe on any node: runtime.valkey_feed). In
        # sentinel mode both ask the sentinels where the primary is (runtime.valkey_sentinel;
        # valkey-py's Sentinel for the off-path client).
        self.valkey: Any
        self.valkey_mux: ValkeyMux
        self.sentinel: Any = None
        if r.mode == "cluster":
            from valkey.asyncio.cluster import ClusterNode, ValkeyCluster

            seeds = [(r.host, r.port)] + [parse_address(a) for a in r.cluster_nodes]
            self.valkey = ValkeyCluster(startup_nodes=[ClusterNode(h, p) for h, p in seeds],
                                        password=r.password or None, socket_timeout=r.timeout,
                                        socket_connect_timeout=r.timeout, max_connections=r.pool_size,
                                        **cluster_retries(r.max_retries, r.timeout))
            self.valkey_mux = ClusterMux.from_config(r)
            valkey_check = self.valkey_mux.health_check
        elif r.mode == "sentinel":
            from valkey.asyncio.sentinel import Sentinel

            from runtime.valkey_sentinel import BlockingSentinelPool, SentinelMux

            timeouts = {"socket_timeout": r.timeout, "socket_connect_timeout": r.timeout}
            self.sentinel = Sentinel([parse_address(a) for a in r.sentinels],
                                     sentinel_kwargs={"password": r.sentinel_password or None, **timeouts},
                                     password=r.password or None, db=r.db, **timeouts)
            self.valkey = self.sentinel.master_for(r.sentinel_master, connection_pool_class=BlockingSentinelPool,
                                                   max_connections=r.pool_size, timeout=r.timeout,
                                                   **command_retries(r.max_retries, r.timeout))
            self.valkey_mux = SentinelMux.from_config(r)
            valkey_check = self.valkey_mux.health_check
        else:
            # A blocking pool: past pool_size, a request waits (up to the timeout) for a free
            # connection instead of failing at once with "Too many connections".
            self.valkey = valkey_asyncio.Valkey(
                connection_pool=valkey_asyncio.BlockingConnectionPool(
                    host=r.host,
                    port=r.port,
                    db=r.db,
                    password=r.password or None,
                    socket_timeout=r.timeout,
                    socket_connect_timeout=r.timeout,
                    max_connections=r.pool_size,
                    timeout=r.timeout,
                    **command_retries(r.max_retries, r.timeout),
                )
            )
            self.valkey_mux = ValkeyMux.from_config(r)
            valkey_check = self.valkey.ping
        domains = declared()
        self.backends = Backends(dict(config.grpc.services), {n: d.stub for n, d in domains.items()},
                                 CallPolicy.from_config(config.grpc), config.grpc.tls)
        for name, client in self.backends.clients.items():
            if client.tls == "none" and not _loopback(client.target):
                log.warning(f"backend {name} at {client.target} is called in clear text, user and organization "
                            f"metadata included (set grpc.tls.{name})")
        # Dependencies without which /ready answers 503 (the domains that say so).
        self.required = frozenset(n for n, d in domains.items() if d.required)
        checks = {name: grpc_health_check(c.channel) for name, c in self.backends.clients.items()}
        self.health = HealthMonitor({**checks, "valkey": valkey_check}, config.grpc.health_interval)
        self.health.after_round = self._export_health
        j = config.jwt
        self.jwks = JwksCache(
            j.jwks_url,
            algorithms=tuple(j.algorithms),
            cache_duration=j.cache_duration,
            refetch_interval=j.unknown_kid_refetch_interval,
            fetch=metrics.counted(fetch_jwks, metrics.JWKS_REFRESHES),
            poll_interval=j.jwks_poll_interval,
        )
        self.verifier = TokenVerifier(
            self.jwks,
            issuer=j.issuer,
            audience=j.audience,
            algorithms=tuple(j.algorithms),
            leeway=j.leeway,
            cache_size=j.token_cache_size,
        )
        self.revocations = RevocationList(self.valkey, self.valkey_mux, r.key_prefix, leeway=j.leeway,
                                          unavailable=config.security.revocation_unavailable)
        self.policy = Policy(config.rbac.roles)
        self.cache = None
        self.tracker: Tracker | ClusterTracker | None = None
        if config.cache.enabled:
            c = config.cache
            near = NearCache(r.key_prefix + "cachever:", c.near_max_entries, c.near_max_bytes) if c.near else None
            self.cache = Cache(self.valkey_mux, r.key_prefix, c.policies, near=near)
            self.cache.stats = metrics.MirroredCounter(metrics.CACHE_REQUESTS)  # "<policy>:hit|miss|bypass"
            if near is not None:  # Valkey pushes every change of a version key to every worker
                self.tracker = (ClusterTracker(self.valkey_mux, [self.cache.version_prefix], near.invalidated, near.tracking)
                                if isinstance(self.valkey_mux, ClusterMux) else
                                Tracker(self.valkey_mux, [self.cache.version_prefix], near.invalidated, near.tracking))
        self.limiter = (RateLimiter(self.valkey_mux, synced=SyncedLimiter(self.valkey_mux, config.rate_limits.sync_interval))
                        if config.rate_limits.enabled else None)
        failures = config.security.login_failures
        self.lockout = AccountLockout(self.limiter or RateLimiter(self.valkey_mux), failures.limit, failures.window,
                                      r.key_prefix) if failures.limit > 0 else None
        self.idempotency = (IdempotencyStore(self.valkey_mux, r.key_prefix, config.idempotency,
                                             config.server.request_timeout)
                            if config.idempotency.enabled else None)
        # Business events (runtime.events): None when kafka.enabled is false.
        self.events = open_publisher(config)
        events = self.events
        if events is not None:
            for name, client in self.backends.clients.items():
                def opened(name: str = name, breaker: Any = client.breaker) -> None:
                    events.emit("erp.gateway.breaker.opened", subject=name,
                                data={"backend": name, "consecutive_failures": breaker.consecutive_failures,
                                      "cooldown_seconds": breaker.cooldown})

                client.breaker.on_open = opened
        # Realtime fan-out: one Valkey subscription for the worker, whatever its sockets.
        self.realtime = Hub(self.valkey, r.key_prefix, config.realtime, self.policy, commands=self.valkey_mux)

    def _export_health(self, results: dict) -> None:
        for name, result in results.items():
            metrics.DEPENDENCY_UP.labels(name).set(1 if result.up else 0)
        for client in self.backends.clients.values():
            client.export_breaker()

    async def start(self) -> None:
        """Background work of the worker; call once its event loop runs (the lifespan)."""
        if self.events is not None:
            self.events.start()
        await self.health.start()
        self.jwks.start()
        self.revocations.start()
        self.realtime.start()
        if self.tracker is not None:
            self.tracker.start()

    async def close(self) -> None:
        if self.events is not None:  # requests have drained: deliver or spool what is left
            await asyncio.to_thread(self.events.close, self.config.kafka.flush_timeout)
        await self.realtime.close()
        if self.tracker is not None:
            await self.tracker.close()
        if self.limiter is not None and self.limiter.synced is not None:
            await self.limiter.synced.aclose()  # before the mux: what this worker admitted is pushed
        await self.revocations.close()
        await self.jwks.close()
        await self.health.stop()
        await self.backends.close()
        await self.valkey_mux.aclose()
        await self.valkey.aclose()
        if self.sentinel is not None:
            for sentinel in self.sentinel.sentinels:
                await sentinel.aclose()
