"""Backend calls per request under a read/write mix: what the response cache saves.

One client, one request at a time, so the result is deterministic. A write through the gateway
invalidates its cache policy for the whole organization, so with `ids` customers read in turn
each write costs `ids` misses: `ids` / (1 - hit rate) reads per write give the hit rate asked
for (4 ids at 95%: 1 PATCH per 80 GETs). The emulator counts the calls it serves
(/_emulator/stats); health checks are left out, they do not depend on the traffic.
"""

from __future__ import annotations

from collections import Counter

import orjson

from emulator.services.jwks import STATS_PATH
from emulator.services.server import HEALTH_PREFIX
from loadtests.bench.servers import Client
from loadtests.bench.targets import CUSTOMERS

GET_CUSTOMER = "/erp.crm.v1.CrmService/GetCustomer"


def backend_calls(emulator: Client) -> Counter[str]:
    """Calls served so far, by "service method"; grpc.health.v1 checks left out."""
    status, raw = emulator.request("GET", STATS_PATH)
    if status != 200:
        raise RuntimeError(f"emulator stats: HTTP {status} {raw[:300]!r}")
    return Counter({f"{service} {method}": n for service, methods in orjson.loads(raw)["calls"].items()
                    for method, n in methods.items() if not method.startswith(HEALTH_PREFIX)})


def run_mix(gateway: Client, emulator: Client, requests: int, hit_rate: float = 0.95, ids: int = 4) -> dict:
    token = gateway.token()
    paths = [f"{CUSTOMERS}/{c['id']}" for c in gateway.get(f"{CUSTOMERS}?page_size={ids}")["data"]["items"]]
    reads_per_write = round(len(paths) / (1 - hit_rate))
    before = backend_calls(emulator)
    cache: Counter[str] = Counter()
    gets = writes = 0
    for i in range(requests):
        if i % (reads_per_write + 1) == 0:  # a write first: every cycle starts from a cold cache
            path = paths[writes % len(paths)]
            body = orjson.dumps({"phone": f"+1 555 {writes % 10_000:04d}"})
            status, headers, raw = gateway.send("PATCH", path, body, token)
            writes += 1
        else:
            status, headers, raw = gateway.send("GET", paths[gets % len(paths)], token=token)
            cache[headers.get("X-Cache", "none")] += 1
            gets += 1
        if not 200 <= status < 300:
            raise RuntimeError(f"mix: request {i} answered HTTP {status}: {raw[:300]!r}")
    calls = backend_calls(emulator) - before
    total = sum(calls.values())
    return {
        "requests": requests, "gets": gets, "patches": writes, "ids": len(paths),
        "reads_per_write": reads_per_write, "x_cache": dict(cache),
        "hit_rate": cache["HIT"] / gets if gets else 0.0,
        "get_customer_per_get": calls[f"crm {GET_CUSTOMER}"] / gets if gets else 0.0,
        "backend_calls": total, "backend_calls_per_request": total / requests if requests else 0.0,
        "calls": dict(sorted(calls.items())),
    }


def print_mix(mix: dict) -> None:
    print(f"\nRead/write mix: {mix['requests']:,} requests one at a time ({mix['gets']:,} GET, {mix['patches']} PATCH "
          f"of {mix['ids']} customers, 1 PATCH per {mix['reads_per_write']} GETs)")
    print(f"  observed hit rate        {mix['hit_rate']:.1%}  (X-Cache {mix['x_cache']})")
    print(f"  GetCustomer calls / GET  {mix['get_customer_per_get']:.3f}")
    print(f"  backend calls / request  {mix['backend_calls_per_request']:.3f}  ({mix['backend_calls']:,} in all)")
    for name, n in mix["calls"].items():
        print(f"    {n:6,}  {name}")
