"""What one worker holds for its whole life: configuration, clients, caches.

Built in the ASGI lifespan, after Granian has forked the worker, because neither a gRPC
channel nor a Valkey connection pool may cross a fork.
"""

from __future__ import annotations

import valkey.asyncio as valkey_asyncio

from runtime.auth.jwks import JwksCache
from runtime.auth.revocation import RevocationList
from runtime.auth.tokens import TokenVerifier
from runtime.backends.client import Backends
from runtime.config import Config
from runtime.rbac import Policy


class Resources:
    def __init__(self, config: Config) -> None:
        self.config = config
        r = config.redis
        self.valkey = valkey_asyncio.Valkey(
            host=r.host,
            port=r.port,
            db=r.db,
            password=r.password or None,
            socket_timeout=r.timeout,
            socket_connect_timeout=r.timeout,
            max_connections=r.pool_size,
        )
        self.backends = Backends(dict(config.grpc.services), timeout=config.grpc.timeout)
        j = config.jwt
        self.jwks = JwksCache(
            j.jwks_url,
            algorithms=tuple(j.algorithms),
            cache_duration=j.cache_duration,
            refetch_interval=j.unknown_kid_refetch_interval,
        )
        self.verifier = TokenVerifier(
            self.jwks,
            issuer=j.issuer,
            audience=j.audience,
            algorithms=tuple(j.algorithms),
            leeway=j.leeway,
            cache_size=j.token_cache_size,
        )
        self.revocations = RevocationList(self.valkey, r.key_prefix)
        self.policy = Policy(config.rbac.roles)

    async def close(self) -> None:
        await self.backends.close()
        await self.valkey.aclose()
