"""python -m loadtests.bench.profile: where the gateway's own CPU time goes, without Granian or the network.

    python -m loadtests.bench.profile [--requests 20000] [--target me|health|customer] [--top 15]

Starts `gw backends` (Valkey and the emulated services, in their own process), builds the gateway
app in this process, runs its ASGI lifespan and calls it directly, one request at a time, on
uvloop: first timed (µs of CPU per request: this process's CPU, gRPC's threads included), then
under cProfile for the top functions. The bare Falcon baseline gets the same treatment.
"""

from __future__ import annotations

from urllib.parse import urlencode

import argparse
import asyncio
import cProfile
import pstats
import re
import signal
import sys
import time
from typing import Any, Sequence

import orjson
import uvloop

from emulator.services.seed import DEMO_PASSWORD
from loadtests.bench.hello_app import create_app as create_hello
from loadtests.bench.servers import DEMO_EMAIL, GATEWAY_ENV, REPO, Processes, start_backends
from loadtests.bench.targets import CUSTOMERS
from runtime.app import build_app
from runtime.config import load_config

PATHS = {"health": "/health", "me": "/api/v1/auth/me", "customer": None,  # customer: the first one listed
         # GraphQL over GET (the profile drives GETs): the same execution as the bench's POSTs.
         "gql_me": "/graphql?" + urlencode({"query": "{ me { id email roles { name } } }"}),
         "gql_employees": "/graphql?" + urlencode({"query": "{ employees(first: 50) { totalCount nodes { id firstName "
                                                            "lastName department { name } manager { firstName } } } }"})}
ASGI = {"version": "3.0", "spec_version": "2.3"}


class AsgiClient:
    """Just enough of an ASGI server to call an app in-process: lifespan and plain HTTP requests."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._events: asyncio.Queue = asyncio.Queue()
        self._replies: asyncio.Queue = asyncio.Queue()

    async def __aenter__(self) -> "AsgiClient":
        self._lifespan = asyncio.create_task(self.app({"type": "lifespan", "asgi": ASGI, "state": {}},
                                                      self._events.get, self._replies.put))
        await self._lifespan_event("startup")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._lifespan_event("shutdown")
        await self._lifespan

    async def _lifespan_event(self, name: str) -> None:
        await self._events.put({"type": f"lifespan.{name}"})
        reply = await self._replies.get()
        if reply["type"] != f"lifespan.{name}.complete":
            raise RuntimeError(f"lifespan {name} failed: {reply.get('message')}")

    async def request(self, method: str, path: str, headers: Sequence[tuple[bytes, bytes]] = (),
                      body: bytes = b"") -> tuple[int, bytes]:
        path, _, query = path.partition("?")
        scope = {"type": "http", "asgi": ASGI, "http_version": "1.1", "method": method, "scheme": "http",
                 "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
                 "headers": [(b"host", b"127.0.0.1"), *headers], "client": ("127.0.0.1", 40000),
                 "server": ("127.0.0.1", 80)}
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def drive(client: AsgiClient, n: int, path: str, headers: list) -> None:
    for _ in range(n):
        status, raw = await client.request("GET", path, headers)
        if not 200 <= status < 300:
            raise RuntimeError(f"GET {path}: HTTP {status} {raw[:300]!r}")


def where(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if filename == "~":  # a builtin
        return function
    filename = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", filename).removeprefix(f"{REPO}/")
    return f"{filename}:{line} {function}"


# The pipeline's stages (runtime/pipeline.py) and the middleware around them: (file suffix, function).
STAGES = (
    ("middleware in", ("runtime/middleware.py", ("process_request",))),
    ("authenticate", ("runtime/pipeline.py", ("authenticate",))),
    ("  verify token", ("runtime/auth/tokens.py", ("verify",))),
    ("  revocation", ("runtime/auth/revocation.py", ("is_revoked",))),
    # enforce_local: decided in the worker (synced limits); enforce: a round trip was due.
    ("rate limit", ("runtime/security/route_limits.py", ("enforce_local", "enforce"))),
    ("authorize", ("runtime/pipeline.py", ("authorize",))),
    ("query", ("runtime/pipeline.py", ("validate_query",))),
    ("path parameters", ("runtime/pipeline.py", ("check_path",))),
    ("cache + handler", ("runtime/pipeline.py", ("call_handler",))),
    ("  cache fetch", ("runtime/cache.py", ("fetch",))),
    ("envelope", ("runtime/pipeline.py", ("write_success",))),
    ("middleware out", ("runtime/middleware.py", ("process_response",))),
    ("  metrics", ("runtime/observability/metrics.py", ("observe_request",))),
)


def print_stages(stats: pstats.Stats, requests: int) -> None:
    """Cumulative CPU µs per request of each stage's function (0 when the stage did not run)."""
    cum: dict[str, float] = {}
    for (filename, _, function), (_, _, _, total, _) in stats.stats.items():  # type: ignore[attr-defined]
        for name, (suffix, functions) in STAGES:
            if function in functions and filename.endswith(suffix):
                cum[name] = cum.get(name, 0.0) + total
    print("  per stage: cumulative CPU µs per request under cProfile (inflated; compare stages, runs)")
    for name, _ in STAGES:
        print(f"    {name:18} {cum.get(name, 0.0) / requests * 1e6:8.1f}")


def print_top(stats: pstats.Stats, requests: int, top: int) -> None:
    # (file, line, function) -> (primitive calls, calls, own s, cumulative s, callers); this client left out
    rows = [(k, v) for k, v in stats.stats.items() if k[0] != __file__]  # type: ignore[attr-defined]
    for title, column in (("cumulative", 3), ("own (total) time", 2)):
        print(f"  top {top} by {title}: CPU µs per request under cProfile (which inflates them);"
              " calls* counts each resume of a coroutine")
        print(f"    {'cum µs':>8} {'own µs':>8} {'calls*':>6}  function")
        for key, (_, calls, own, cum, _) in sorted(rows, key=lambda kv: kv[1][column], reverse=True)[:top]:
            print(f"    {cum / requests * 1e6:8.1f} {own / requests * 1e6:8.1f} {calls / requests:6.1f}  {where(key)}")


async def measure(name: str, app: Any, path: str | None, requests: int, top: int) -> float:
    """µs of CPU per request; prints them and the profile."""
    async with AsgiClient(app) as client:
        headers = []
        if name != "hello" and path != "/health":
            login = orjson.dumps({"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
            status, raw = await client.request("POST", "/api/v1/auth/login",
                                               [(b"content-type", b"application/json")], login)
            if status != 200:
                raise RuntimeError(f"login failed: HTTP {status} {raw[:300]!r}")
            headers = [(b"authorization", b"Bearer " + orjson.loads(raw)["data"]["access_token"].encode())]
        if path is None:
            status, raw = await client.request("GET", CUSTOMERS, headers)
            if status != 200:
                raise RuntimeError(f"GET {CUSTOMERS}: HTTP {status} {raw[:300]!r}")
            path = f"{CUSTOMERS}/{orjson.loads(raw)['data']['items'][0]['id']}"
        await drive(client, max(100, requests // 10), path, headers)  # warm: caches, pools, lazy imports
        cpu, wall = time.process_time(), time.perf_counter()
        await drive(client, requests, path, headers)
        cpu_us = (time.process_time() - cpu) / requests * 1e6
        wall_us = (time.perf_counter() - wall) / requests * 1e6
        profiler = cProfile.Profile(time.thread_time)  # CPU, not wall: waiting on Valkey is not a cost here
        profiler.enable()
        await drive(client, requests, path, headers)
        profiler.disable()
    print(f"\n{name} GET {path}: {requests:,} requests, {cpu_us:.1f} µs CPU/request ({wall_us:.1f} µs wall)")
    if name != "hello":
        print_stages(pstats.Stats(profiler), requests)
    print_top(pstats.Stats(profiler), requests, top)
    return cpu_us


async def run(args: argparse.Namespace, backends: dict[str, str]) -> None:
    overrides = dict(kv.split("=", 1) for kv in args.env)
    gateway = build_app(load_config(env={**backends, **GATEWAY_ENV, **overrides}))
    hello_us = await measure("hello", create_hello(), "/", args.requests, args.top)
    gateway_us = await measure(args.target, gateway, PATHS[args.target], args.requests, args.top)
    print(f"\nµs of CPU per request, in-process on uvloop (no Granian, no network):\n"
          f"  hello    {hello_us:8.1f}\n  {args.target:8} {gateway_us:8.1f}  (the gateway's own code: "
          f"+{gateway_us - hello_us:.1f} µs, x{gateway_us / hello_us:.1f})")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C, so `gw backends` gets stopped


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=20000, help="requests per measurement (timed, then profiled)")
    p.add_argument("--target", choices=list(PATHS), default="me")
    p.add_argument("--top", type=int, default=15, help="functions listed per ranking")
    p.add_argument("--env", action="append", default=[], metavar="ERP_KEY=VALUE",
                   help="configuration for the gateway, e.g. ERP_RATE_LIMITS_ENABLED=false to see a stage's cost")
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with Processes() as processes:
            print("starting gw backends", file=sys.stderr, flush=True)
            uvloop.run(run(args, start_backends(processes)))
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, OSError) as exc:
        print(f"profile failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
