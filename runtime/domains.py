"""What each backend domain declares once, next to its handlers: the gRPC service it calls,
where that service is by default, whether the gateway is unavailable without it, and the
cache policies its routes use.

    # handlers/crm/__init__.py
    DOMAIN = Domain("crm", crm_pb2_grpc.CrmServiceStub, address="localhost:50052",
                    cache_policies={"crm_customers": CACHE_2M, ...})

The configuration's defaults (`grpc.services`, `cache.policies`), the gRPC clients and
/ready are built from these declarations, so adding a domain touches no runtime file.
Discovery imports each top-level package under `handlers/` (as endpoint discovery does)
and collects its `DOMAIN`.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Callable, Mapping

__all__ = ["Domain", "declared"]


@dataclass(frozen=True)
class Domain:
    service: str  # the key in grpc.services and ctx.backends.<service>
    stub: Callable[[Any], Any]  # the generated *ServiceStub
    address: str  # default host:port of the service (grpc.services.<service>)
    required: bool = False  # /ready answers 503 while this backend is down
    # Default cache.policies entries its routes name: {name: {"ttl": "2m", "scope": ...}}.
    cache_policies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@cache
def declared(package: str = "handlers") -> dict[str, Domain]:
    """service name -> Domain, for every `DOMAIN` of a top-level package under `package`."""
    root = importlib.import_module(package)
    domains: dict[str, Domain] = {}
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        domain = getattr(importlib.import_module(f"{package}.{info.name}"), "DOMAIN", None)
        if domain is None:
            continue
        if domain.service in domains:
            raise ValueError(f"{package}.{info.name}: service {domain.service!r} is declared twice")
        domains[domain.service] = domain
    return domains
