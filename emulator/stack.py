"""The local stack: embedded Valkey plus every emulated backend, and the ERP_* environment
that points a gateway at them. `gw serve`, `gw backends` and `gw invoke` all start this.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from emulator.services import Backends, start_backends
from emulator.services.faults import Fault, apply_faults
from emulator.valkey import EmbeddedValkey
from runtime.config import Config

SERVICES = ("auth", "crm", "hrm", "finance")


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


class LocalStack:
    def __init__(self, config: Config, *, free_ports: bool, host: str = "127.0.0.1",
                 faults: dict[str, Fault] | None = None, tls: dict[str, Any] | None = None) -> None:
        self.config = config
        self.tls = tls  # service -> grpc.ServerCredentials: those backends serve TLS
        self.faults = faults or {}  # applied once the services are up (see emulator.services.faults)
        self.host = host
        if free_ports:
            self.ports = {name: 0 for name in (*SERVICES, "jwks")}
            valkey_port = None
        else:  # where the configuration says the backends are
            self.ports = {name: _port(config.grpc.services[name]) for name in SERVICES}
            self.ports["jwks"] = urlsplit(config.jwt.jwks_url).port or 80
            valkey_port = config.redis.port
        self.valkey = EmbeddedValkey(port=valkey_port, host=host)
        self.backends: Backends | None = None

    async def start(self) -> "LocalStack":
        self.valkey.start()
        try:
            self.backends = await start_backends(
                self.host,
                self.ports,
                issuer=self.config.jwt.issuer,
                audience=self.config.jwt.audience,
                tls=self.tls,
            )
            await apply_faults(self.backends.servers, self.faults)
        except BaseException:
            if self.backends is not None:
                await self.backends.stop(0)
                self.backends = None
            self.valkey.stop()
            raise
        return self

    async def stop(self) -> None:
        if self.backends is not None:
            await self.backends.stop()
            self.backends = None
        self.valkey.stop()

    def environment(self) -> dict[str, str]:
        """ERP_* variables that make a gateway use this stack."""
        backends = self.backends
        assert backends is not None, "start() the stack first"
        env = {f"ERP_GRPC_SERVICES_{name.upper()}": backends.addresses[name] for name in SERVICES}
        env["ERP_JWT_JWKS_URL"] = backends.jwks_url
        env["ERP_REDIS_HOST"] = self.valkey.host
        env["ERP_REDIS_PORT"] = str(self.valkey.port)
        return env
