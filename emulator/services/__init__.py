"""In-process stand-ins for the ERP backends: auth (+ JWKS over HTTP), crm, hrm, finance.

Each service is its own grpc.aio server on its own port, so one can be stopped and brought
back on the same port while the others keep running; their data lives outside the servers.
"""

from __future__ import annotations

import asyncio

import grpc

from emulator.services import auth, crm, finance, hrm
from emulator.services.auth import AuthState
from emulator.services.jwks import JwksServer
from emulator.services.rpc import ServiceError
from emulator.services.seed import seed
from emulator.services.server import ServiceServer
from emulator.services.store import Store

DEFAULT_PORTS = {"auth": 50051, "crm": 50052, "hrm": 50053, "finance": 50054, "jwks": 8000}


class Backends:
    """The running backends. ``servers[name].interceptor.calls`` counts calls per method."""

    def __init__(self, auth_state: AuthState, stores: dict[str, Store],
                 servers: dict[str, ServiceServer], jwks: JwksServer) -> None:
        self.auth = auth_state
        self.stores = stores  # "crm" | "hrm" | "finance" -> Store
        self.servers = servers  # "auth" | "crm" | "hrm" | "finance" -> ServiceServer
        self.jwks = jwks  # .jwks_fetches counts JWKS downloads

    @property
    def addresses(self) -> dict[str, str]:
        return {name: server.address for name, server in self.servers.items()}

    @property
    def jwks_url(self) -> str:
        return self.jwks.url

    async def stop(self, grace: float = 1.0) -> None:
        await asyncio.gather(self.jwks.stop(), *(s.stop(grace) for s in self.servers.values()))


def wire_references(state: AuthState, stores: dict[str, Store]) -> None:
    """References from one service's records to another's: checked for the caller's
    organization and existence, as a real backend would (an invoice for another
    organization's customer, an employee linked to another organization's user)."""

    def user_in(org: str, user_id: str) -> bool:
        try:
            state.get_user(user_id, org)
        except ServiceError:
            return False
        return True

    stores["crm"].lookups["User"] = user_in
    stores["hrm"].lookups["User"] = user_in
    stores["finance"].lookups["Customer"] = lambda org, id: stores["crm"].exists("Customer", org, id)


async def start_backends(host: str = "127.0.0.1", ports: dict[str, int] | None = None, *,
                         issuer: str = "erp-auth-service", audience: str = "erp-api-gateway",
                         access_ttl: int = 900,
                         tls: dict[str, grpc.ServerCredentials] | None = None) -> Backends:
    """Start every backend with seed data; a port of 0 picks a free one. `tls` maps a
    service to the credentials it serves TLS with (grpc.ssl_server_credentials)."""
    tls = tls or {}
    ports = {**DEFAULT_PORTS, **(ports or {})}
    stores = {"crm": Store(crm.RESOURCES), "hrm": Store(hrm.RESOURCES),
              "finance": Store(finance.RESOURCES)}

    def prepare() -> AuthState:  # RSA key generation and password hashing: off the loop
        state = AuthState(issuer=issuer, audience=audience, access_ttl=access_ttl)
        seed(state, **stores)
        return state

    state = await asyncio.to_thread(prepare)
    wire_references(state, stores)
    servers = {"auth": auth.build(state), "crm": crm.build(stores["crm"]),
               "hrm": hrm.build(stores["hrm"]), "finance": finance.build(stores["finance"])}

    def calls() -> dict[str, dict[str, int]]:  # for the JWKS server's /_emulator/stats
        return {name: dict(server.interceptor.calls) for name, server in servers.items()}

    backends = Backends(state, stores, servers, JwksServer(state.jwks, calls))
    try:
        for name, server in servers.items():
            await server.start(host, ports[name], tls.get(name))
        await backends.jwks.start(host, ports["jwks"])
    except BaseException:
        await backends.stop(0)  # never leave half the backends listening
        raise
    return backends
