"""python -m loadtests.bench.report: every comparison in one run, written up as Markdown with
a PNG chart.

For each worker count (1 and 2 by default) it starts the backends, the gateway, the bare Falcon
app on Granian and the FastAPI/uvicorn twin, all at that worker count, then:

1. saturation: wrk (closed loop, 50 connections) over every target in interleaved rounds,
   each target run next to a run of the bare app (`python -m loadtests.bench`'s rounds);
2. half load: an open-loop constant rate at half of each target's saturating req/s
   (loadtests.bench.openloop: latency from each request's due time, no coordinated omission);
3. the backend calls one 50-employee GraphQL query makes (the emulator counts them).

Then the WebSocket broadcast comparison (loadtests.bench.ws_broadcast) and the Kafka event
figures (loadtests.bench.events, when the broker's jars are installed), and it writes
`<out>/REPORT.md`, `<out>/chart.png` and `<out>/results.json`. Exit status 1 when a row is
invalid (non-2xx answers or errors: the report marks it), 0 otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from loadtests.bench import openloop, wrk
from loadtests.bench.__main__ import Bench, log
from loadtests.bench.__main__ import parse_args as bench_args
from loadtests.bench.mix import backend_calls
from emulator.services.jwks import STATS_PATH
from loadtests.bench.servers import GATEWAY_ENV, REPO, Client, Processes, start_servers
from loadtests.bench.targets import BASELINE, TARGETS, Target

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "report"
# The REST reads the hot-path goals are about, and their FastAPI twins.
REST_READS = ("me", "customer")
P99_GOAL_MS = 10.0
GRAPHQL_CALL_REQUESTS = 20


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, action="append", help="worker counts (repeatable; default 1 and 2)")
    p.add_argument("--duration", type=float, default=8, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=3, help="interleaved wrk rounds; medians are reported")
    p.add_argument("--connections", type=int, default=50, help="wrk connections, and the open-loop generator's")
    p.add_argument("--warmup", type=float, default=2, help="seconds of unmeasured wrk load per target first")
    p.add_argument("--half-duration", type=float, default=8, help="seconds of each open-loop run (0 skips them)")
    p.add_argument("--half-load", type=float, default=0.5, help="the open-loop rate as a share of the saturating rate")
    p.add_argument("--target", action="append", choices=[t.name for t in TARGETS],
                   help="only these targets (repeatable; default: all)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--ws-sockets", type=int, default=5000,
                   help="sockets for the WebSocket broadcast comparison (0 skips it)")
    p.add_argument("--ws-broadcasts", type=int, default=10)
    p.add_argument("--events-rounds", type=int, default=2, help="rounds of the Kafka events bench (0 skips it)")
    p.add_argument("--events-duration", type=float, default=5)
    p.add_argument("--events", type=int, default=50_000, help="events for the publisher's throughput")
    p.add_argument("--render", type=Path, metavar="RESULTS_JSON",
                   help="measure nothing: write REPORT.md and chart.png again from a results.json")
    args = p.parse_args(argv)
    args.workers = args.workers or [1, 2]
    if not 0 < args.half_load < 1:
        p.error("--half-load must be between 0 and 1")
    return args


# -- the machine ------------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _wrk_version() -> str:
    found = wrk.find_wrk()
    if not found:
        return "not installed"
    done = subprocess.run([found, "-v"], capture_output=True, text=True, timeout=10)
    return (done.stdout or done.stderr).split("[")[0].strip() or "unknown"


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                               text=True, timeout=10)
    except OSError:
        return "unknown"
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "") if head.returncode == 0 else "unknown"


def rs256_verify_us(n: int = 300) -> float:
    """CPU µs of one PyJWT RS256 decode (2048-bit key, as the emulator signs): what the twin
    pays per request and the gateway once per token."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "s", "aud": "a", "iss": "i", "exp": time.time() + 600}, key, algorithm="RS256")
    public = key.public_key()
    for _ in range(20):
        jwt.decode(token, public, algorithms=["RS256"], audience="a", issuer="i")
    started = time.thread_time()
    for _ in range(n):
        jwt.decode(token, public, algorithms=["RS256"], audience="a", issuer="i")
    return (time.thread_time() - started) / n * 1e6


def machine() -> dict:
    """What the figures came from, read at run time."""
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(_memory_gib(), 1),
        "os": _os_name(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": {name: _version(name) for name in ("granian", "falcon", "fastapi", "uvicorn", "uvloop", "graphql-core",
                                                        "PyJWT", "valkey", "grpcio")},
        "wrk": _wrk_version(),
        "rs256_verify_us": round(rs256_verify_us(), 1),
        "commit": _commit(),
    }


# -- the runs ---------------------------------------------------------------------------------


def selected(args: argparse.Namespace) -> list[Target]:
    """The targets asked for, each gateway read with its FastAPI twin (they are compared)."""
    if not args.target:
        return list(TARGETS)
    asked = set(args.target)
    return [t for t in TARGETS if t.name in asked or (t.mirrors in asked)]


def half_load(bench: Bench, target: Target, saturating_rps: float, args: argparse.Namespace) -> dict:
    """The target at a constant `args.half_load` of its saturating rate, open loop."""
    token = bench.clients["gateway"].token() if target.auth else None
    rate = max(1.0, saturating_rps * args.half_load)
    run = openloop.run(bench.clients[target.server].base + bench.paths[target.name], rate=rate,
                       duration=args.half_duration, connections=args.connections, method=target.method,
                       body=target.body, authorization=f"Bearer {token}" if token else None)
    log(f"  half load {target.name:16} {rate:8,.0f} req/s asked, {run.sent_rate:8,.0f} sent   "
        f"p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms   generator lag p99 {run.send_lag_p99_ms:.2f} ms")
    return run.as_dict()


def graphql_calls(bench: Bench, target: Target, requests: int = GRAPHQL_CALL_REQUESTS) -> dict:
    """Backend calls per request of one GraphQL query, sent one at a time after the load (so
    the query's list is cached, as it would be for a dashboard that polls)."""
    gateway, emulator = bench.clients["gateway"], bench.clients["emulator"]
    body = target.body.encode() if target.body else None
    before = backend_calls(emulator)
    for _ in range(requests):
        status, raw = gateway.request(target.method, bench.paths[target.name], body, token=gateway.token())
        if not 200 <= status < 300:
            raise RuntimeError(f"{target.name}: HTTP {status} {raw[:300]!r}")
    calls = backend_calls(emulator) - before
    return {"requests": requests, "calls_per_request": sum(calls.values()) / requests, "calls": dict(sorted(calls.items()))}


def jwks_fetches(emulator: Client) -> int:
    status, raw = emulator.request("GET", STATS_PATH)
    if status != 200:
        raise RuntimeError(f"emulator stats: HTTP {status} {raw[:300]!r}")
    return int(orjson.loads(raw)["jwks_fetches"])


def run_workers(workers: int, args: argparse.Namespace) -> dict:
    targets = selected(args)
    bench_argv = ["--workers", str(workers), "--duration", str(args.duration), "--rounds", str(args.rounds),
                  "--connections", str(args.connections), "--warmup", str(args.warmup), "--mix-requests", "0"]
    loadavg_before = os.getloadavg()
    with Processes() as processes:
        log(f"== {workers} worker(s): starting backends, the gateway, bare Falcon on Granian and FastAPI on uvicorn")
        servers = start_servers(processes, workers, {t.server for t in targets})
        # Each server's process group, for its CPU per request (steadier than req/s on a shared machine).
        groups: dict[str, int] = {name: processes.pid(name) for name in ("gateway", "hello", "fastapi") if name in servers}
        bench = Bench(bench_args(bench_argv), servers, groups)
        emulator = bench.clients["emulator"]
        before = (jwks_fetches(emulator), backend_calls(emulator))
        results = bench.run(targets)
        for target in (BASELINE, *targets):
            results[target.name]["connections"] = bench.connections(target)
        if args.half_duration > 0:
            log(f"open loop at {args.half_load:.0%} of each target's saturating rate, {args.half_duration:g} s each")
            for target in (BASELINE, *targets):
                results[target.name]["half"] = half_load(bench, target, results[target.name]["rps"], args)
        # What the backends saw while every target was under load: JWKS fetches (keys cached, not
        # fetched per request, by the gateway and the twin alike) and gRPC calls (cache hits).
        during = {"jwks_fetches": jwks_fetches(emulator) - before[0],
                  "calls": dict(sorted((backend_calls(emulator) - before[1]).items())),
                  "requests": sum(run["requests"] for r in results.values() for run in r["runs"])
                  + sum(r["half"]["requests"] for r in results.values() if r.get("half"))}
        gql = next((t for t in targets if t.name == "gql_employees"), None)
        calls = graphql_calls(bench, gql) if gql else None
        log("stopping everything")
    return {"workers": workers, "targets": results, "graphql_employees_calls": calls, "backends_during_load": during,
            "loadavg": {"before": loadavg_before, "after": os.getloadavg()}}


def run_ws(args: argparse.Namespace) -> dict | None:
    """The WebSocket comparison (loadtests.bench.ws_broadcast): gateway vs a bare ASGI socket."""
    if args.ws_sockets <= 0:
        return None
    from loadtests.bench.ws_broadcast import main as ws_main

    log(f"== WebSocket broadcast: {args.ws_sockets} sockets, {args.ws_broadcasts} broadcasts")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ws.json"
        try:
            ws_main(["--sockets", str(args.ws_sockets), "--broadcasts", str(args.ws_broadcasts), "--json", str(out)])
        except (RuntimeError, OSError, AssertionError, TimeoutError) as exc:
            # The HTTP figures are worth keeping: the report says what failed instead.
            return {"failed": f"{type(exc).__name__}: {exc}"}
        return orjson.loads(out.read_bytes())["results"]


def run_events(args: argparse.Namespace) -> dict | None:
    """The Kafka figures (loadtests.bench.events), or why there are none."""
    if args.events_rounds <= 0:
        return None
    from emulator.kafka_broker import kafka_home
    from loadtests.bench.events import main as events_main

    if not (kafka_home() / "lib" / ".complete").exists() or not shutil.which("java"):
        return {"skipped": f"no Kafka broker here (run `bash tests/peers/kafka.sh`; looked in {kafka_home()})"}
    log(f"== Kafka events: {args.events_rounds} rounds of {args.events_duration:g} s, {args.events:,} events")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "events.json"
        try:
            code = events_main(["--rounds", str(args.events_rounds), "--duration", str(args.events_duration),
                                "--events", str(args.events), "--json", str(out)])
        except (RuntimeError, OSError) as exc:
            return {"skipped": f"the events bench failed: {exc}"}
        if code != 0 or not out.exists():
            return {"skipped": f"the events bench exited {code}"}
        return orjson.loads(out.read_bytes())


# -- what the figures say ---------------------------------------------------------------------


def versus_twin(targets: dict) -> dict[str, float]:
    """gateway target -> its req/s over its FastAPI twin's, through their baseline ratios
    (each side's ratio to the bare run next to it, divided: drift between runs cancels)."""
    return {
        r["mirrors"]: targets[r["mirrors"]]["ratio"] / r["ratio"]
        for r in targets.values() if r.get("mirrors") and r["ratio"] and r["mirrors"] in targets
    }


def invalid(r: dict) -> list[str]:
    """Why a row's figures measure failures rather than the server (empty when they are valid)."""
    why = []
    if r["non_2xx"] or r["errors"]:
        why.append(f"wrk: {r['non_2xx']} non-2xx, {r['errors']} errors")
    half = r.get("half")
    if half and (half["non_2xx"] or half["errors"]):
        why.append(f"open loop: {half['non_2xx']} non-2xx, {half['errors']} errors")
    return why


MET, NOT_MET, INVALID, NOT_APPLICABLE = "met", "not met", "invalid row", "n/a"


def _met(ok: bool, *rows: dict) -> str:
    """A goal's verdict; never "met" on figures that measured failures."""
    if any(invalid(r) for r in rows):
        return INVALID
    return MET if ok else NOT_MET


def goals(results: dict[int, dict], ws: dict | None) -> list[tuple[str, str, str, str]]:
    """(issue, goal, measured, verdict) for every goal of issues 11, 12, 15 and 16 this run measures."""
    rows: list[tuple[str, str, str, str]] = []
    for workers, data in results.items():
        t = data["targets"]
        twins = versus_twin(t)
        for name in REST_READS:
            if name in t:
                rows.append(("15, 16", f"REST `{name}` at 0.80 or better of bare Falcon, {workers} worker(s)",
                             f"{t[name]['ratio']:.2f}", _met(t[name]["ratio"] >= 0.80, t[name], t[BASELINE.name])))
        for name in REST_READS:
            if name in t and BASELINE.name in t:
                bare = t[BASELINE.name]["p99_ms"]
                rows.append(("15", f"REST `{name}` p99 at {t[name]['connections']} connections at most 2x bare's, {workers} worker(s)",
                             f"{t[name]['p99_ms']:.1f} ms vs {bare:.1f} ms ({t[name]['p99_ms'] / bare:.1f}x)" if bare else "n/a",
                             _met(bool(bare) and t[name]["p99_ms"] <= 2 * bare, t[name], t[BASELINE.name])))
        for name in REST_READS:
            if name in twins:
                rows.append(("16", f"REST `{name}` at 3x or better of its FastAPI/uvicorn twin, {workers} worker(s)",
                             f"{twins[name]:.2f}x", _met(twins[name] >= 3, t[name], *(r for r in t.values() if r.get("mirrors") == name))))
        bare_half = t.get(BASELINE.name, {}).get("half")
        floor = f"; bare app at its half load: {bare_half['p99_ms']:.1f} ms" if bare_half else ""
        for name, r in t.items():
            half = r.get("half")
            if half and r["server"] == "gateway":
                rows.append(("16", f"`{name}` p99 under {P99_GOAL_MS:g} ms at half its saturating load, {workers} worker(s)",
                             f"{half['p99_ms']:.1f} ms at {half['rate']:,.0f} req/s (generator lag p99 "
                             f"{half['send_lag_p99_ms']:.1f} ms{floor})",
                             _met(half["p99_ms"] < P99_GOAL_MS, r)))
        if "gql_me" in t and "me" in t and t["me"]["ratio"]:
            share = t["gql_me"]["ratio"] / t["me"]["ratio"]
            rows.append(("11", f"GraphQL small cached query at 0.5 or better of REST `/me`, {workers} worker(s)",
                         f"{share:.2f}", _met(share >= 0.5, t["gql_me"], t["me"])))
        calls = data.get("graphql_employees_calls")
        if calls:
            rows.append(("11", f"50-employee GraphQL query at 3 backend calls at most, {workers} worker(s)",
                         f"{calls['calls_per_request']:.2f} per request (list cached; 3 uncached: tests/integration/test_graphql.py)",
                         _met(calls["calls_per_request"] <= 3)))
    if ws and "gateway" in ws and "failed" not in ws:
        g = ws["gateway"]
        rows.append(("12", f"broadcast to {g['sockets']:,} sockets delivered within 1 s at p99 (goal stated for 5,000)",
                     f"p99 {g['p99_ms']:,.0f} ms", _met(g["p99_ms"] <= 1000) if g["sockets"] >= 5000 else NOT_APPLICABLE))
        if "bare" in ws:
            over = g["kib_per_socket"] - ws["bare"]["kib_per_socket"]
            rows.append(("12", "memory per socket above a bare ASGI socket on Granian under 10 KiB",
                         f"{over:.1f} KiB ({g['kib_per_socket']:.1f} in all; the issue's 50 KiB total is below Granian's own buffers)",
                         _met(over < 10) if g["sockets"] >= 1000 else NOT_APPLICABLE))
    return rows


# -- Markdown ---------------------------------------------------------------------------------


def _ms(x: float) -> str:
    return f"{x:,.2f}" if x < 100 else f"{x:,.0f}"


def machine_markdown(m: dict, results: dict[int, dict]) -> list[str]:
    v = m["versions"]
    loads = ", ".join(f"{w} worker(s): {d['loadavg']['before'][0]:.1f} before, {d['loadavg']['after'][0]:.1f} after"
                      for w, d in results.items())
    return [
        "## Machine", "",
        "| | |", "|---|---|",
        f"| CPU | {m['cpu_model']}, {m['cpus']} cores ({m['cpus_usable']} usable), {m['arch']} |",
        f"| memory | {m['memory_gib']:g} GiB |",
        f"| OS, kernel | {m['os']}, Linux {m['kernel']} |",
        f"| Python | {m['python']} |",
        f"| servers | Granian {v['granian']} (Falcon {v['falcon']}), uvicorn {v['uvicorn']} (FastAPI {v['fastapi']}), uvloop {v['uvloop']} |",
        f"| libraries | graphql-core {v['graphql-core']}, PyJWT {v['PyJWT']}, valkey-py {v['valkey']}, grpcio {v['grpcio']} |",
        f"| load generators | {m['wrk']} (saturation), loadtests.bench.openloop (half load) |",
        f"| commit | {m['commit']} |",
        f"| load average (1 min) | {loads} |",
        "",
        f"This is a shared {m['cpus']}-core machine: other engineers' test suites ran during the run (see the load "
        "average), and the load generator, the servers under test, Valkey and the emulated backends share its cores. "
        "Absolute req/s and milliseconds are noisy and only good for this run; **read the ratios**, which pair each "
        "run with a run of the bare app just before it.", "",
    ]


METHOD = [
    "## Method", "",
    "- **Saturation** (closed loop): wrk, one thread, `{connections}` keep-alive connections (4 for the 50-employee "
    "query, which takes milliseconds of CPU and times out at 50), `{duration:g}` s runs after a `{warmup:g}` s "
    "warm-up, `{rounds}` rounds in which every target runs right after a run of the bare app; req/s, p50 and p99 "
    "are medians over rounds, **vs bare** is the median of each run's ratio to the bare run before it, **vs "
    "FastAPI** is the gateway's ratio over its twin's (both through the bare runs, so drift cancels). **CPU "
    "µs/request** is the server's own CPU (every process of its Granian or uvicorn group, from /proc, around each "
    "wrk run) over the requests answered, and **CPU vs bare** the bare app's over the target's: the throughput "
    "ratio each would reach with a core to itself, steadier than req/s while other work shares the machine.",
    "- **Half load** (open loop): `loadtests.bench.openloop` sends each target `{half:.0%}` of its own saturating req/s "
    "at a constant rate for `{half_duration:g}` s over `{connections}` connections (after 1 s at that rate, not "
    "counted). Request *i* is due at start + *i*/rate whatever happened before; latency is counted from the due "
    "time, so a stall of the server shows in full instead of being left out (no coordinated omission; what wrk2 "
    "does). **sent** is the rate the generator really sent at, **lag** the p99 of how late it sent "
    "(scheduling of its own process on the busy machine, plus ~1 ms of timer resolution): a large lag means the "
    "machine, not the server, added that much.",
    "- The gateway runs with access logs off and rate limits on with budgets wrk cannot exhaust (`{env}`): every "
    "answer measured is a real 200.",
    "- Every side runs the same worker count: Granian `--workers N` for the gateway and the bare app, uvicorn "
    "`--workers N` for FastAPI.", "",
]

TWIN = [
    "### What the FastAPI/uvicorn twin does", "",
    "`loadtests/bench/fastapi_app.py` serves the same two reads the way many Python teams would write them: "
    "FastAPI on uvicorn with uvloop and httptools, access log off. Per request, in a FastAPI dependency:",
    "",
    "1. **JWT verification, RS256, with a cached key**: `PyJWKClient(cache_keys=True)` fetches the JWKS once "
    "(kept 300 s) and caches each parsed key by `kid`; `jwt.decode` then checks the RSA signature, `aud`, `iss` "
    "and `exp` on every request ({rsa}).",
    "2. **Revocation**: `EXISTS revoked:<jti>` in Valkey (valkey-py asyncio client, one round trip).",
    "3. **Rate limit**: a fixed window, `INCR rl:<sub>:<minute>` (plus `EXPIRE` once per window; one round trip).",
    "4. **The cached read**: `GET me:<sub>` / `GET customer:<org>:<id>` from Valkey (one round trip), the same "
    "JSON envelope the gateway caches; on a miss it calls the same gRPC backend (`auth.GetUser` / "
    "`crm.GetCustomer`) and `SET`s the body for 60 s. Under load every read is a hit.",
    "",
    "The gateway does the same functions differently: a verified token is cached by its exact string, so RSA runs "
    "once per token rather than once per request (with the key's presence in the JWKS re-checked on every hit); "
    "revocations are held in memory, fed by Valkey pub/sub; rate limits are counted locally and synced in batches; "
    "the cached body comes from a per-worker near cache invalidated by Valkey's `CLIENT TRACKING`. So a cached "
    "read costs the gateway no Valkey round trip and no RSA, and costs the twin three round trips and one RSA "
    "verification. The twin also does less than the gateway: no RBAC, no tenancy check, no security headers, no "
    "request id, no ETag, no metrics; its ratio is the price of the obvious design, not of identical code.", "",
]


def _cpu(us: float | None) -> str:
    return f"{us:.1f}" if us else ""  # absent from results written before it was measured


def _cpu_ratio(ratio: float | None) -> str:
    return f"{ratio:.2f}" if ratio else ""


def table_markdown(workers: int, data: dict) -> list[str]:
    t = data["targets"]
    twins = versus_twin(t)
    lines = [f"## {workers} worker(s)", "",
             "| target | server | req/s (saturated) | p50 ms | p99 ms | vs bare | CPU µs/request | CPU vs bare "
             "| vs FastAPI | half load req/s (sent) | p50 ms | p99 ms | generator lag p99 ms |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in t.items():
        twin = f"{twins[name]:.2f}x" if name in twins else ""
        half = r.get("half")
        cells = (f"{half['rate']:,.0f} ({half['sent_rate']:,.0f}) | {_ms(half['p50_ms'])} | {_ms(half['p99_ms'])} "
                 f"| {_ms(half['send_lag_p99_ms'])}") if half else " | | | "
        flag = " ⚠ INVALID: " + "; ".join(invalid(r)) if invalid(r) else ""
        lines.append(f"| {name}{flag} | {r['server']} | {r['rps']:,.0f} | {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} "
                     f"| {r['ratio']:.2f} | {_cpu(r.get('cpu_us'))} | {_cpu_ratio(r.get('cpu_ratio'))} | {twin} | {cells} |")
    lines.append("")
    if "gql_me" in t and "me" in t and t["me"]["ratio"]:
        lines.append(f"GraphQL small query vs REST `/me` (same token, same cache entry): "
                     f"{t['gql_me']['ratio'] / t['me']['ratio']:.2f}.")
    calls = data.get("graphql_employees_calls")
    if calls:
        detail = ", ".join(f"{n} {name.split('/')[-1]}" for name, n in calls["calls"].items())
        lines.append(f"50-employee GraphQL query: {calls['calls_per_request']:.2f} backend calls per request "
                     f"({calls['requests']} requests one at a time after the load: {detail or 'none'}).")
    during = data.get("backends_during_load")
    if during:
        detail = ", ".join(f"{n:,} {name.split('/')[-1]}" for name, n in during["calls"].items())
        lines.append(f"While all of this load ran ({during['requests']:,} measured requests, plus warm-ups), the "
                     f"emulated backends served {during['jwks_fetches']} JWKS fetches and these gRPC calls: "
                     f"{detail or 'none'}. None of that is per request: the JWKS fetches are the gateway's background "
                     "poll (`jwt.jwks_poll_interval`, 1 s, per worker) plus the twin's one per 300 s; a cached read "
                     "(gateway or twin) calls no backend once its entry is filled; each 50-employee query calls "
                     "BatchGetDepartments and BatchGetEmployees.")
    return lines + [""]


def ws_markdown(ws: dict) -> list[str]:
    if "failed" in ws:
        return ["## WebSocket broadcast (1 worker each)", "", f"Not measured: the bench failed ({ws['failed']}).", ""]
    lines = ["## WebSocket broadcast (1 worker each)", "",
             "| server | sockets | KiB per socket | delivery p50 ms | p99 ms | max ms | worker CPU µs per delivery |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in ws.items():
        lines.append(f"| {name} | {r['sockets']:,} | {r['kib_per_socket']:.1f} | {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} "
                     f"| {_ms(r['max_ms'])} | {r['worker_cpu_us_per_delivery']:.1f} |")
    lines.append("")
    if {"bare", "gateway"} <= set(ws):
        over = ws["gateway"]["kib_per_socket"] - ws["bare"]["kib_per_socket"]
        lines += [f"The gateway's memory above a bare ASGI socket on Granian: {over:.1f} KiB per socket. Each broadcast "
                  "is timed from just before its POST to each frame's arrival; the client processes share the cores "
                  "with the servers, so read the gateway against the bare app.", ""]
    return lines


def events_markdown(events: dict) -> list[str]:
    lines = ["## Kafka events (1 worker)", ""]
    if "skipped" in events:
        return lines + [f"Not measured: {events['skipped']}.", ""]
    lines += ["| request | events off req/s | events on req/s | on/off | p99 off ms | p99 on ms |",
              "|---|---:|---:|---:|---:|---:|"]
    for case, r in events["logins"].items():
        lines.append(f"| {case} | {r['off_rps']:,.0f} | {r['on_rps']:,.0f} | {r['ratio']:.2f} "
                     f"| {_ms(r['p99_ms']['off'])} | {_ms(r['p99_ms']['on'])} |")
    s = events["throughput"]
    lines += ["", f"One worker's publisher into a real broker: {s['events_per_s']:,.0f} events/s acknowledged "
              f"({s['acknowledged']:,}/{s['events']:,}, idempotent, acks=all); `emit()` costs {s['emit_us']:.1f} µs "
              f"of CPU on the request's thread; {s['spooled']} spooled. Logins are bounded by the auth emulator's "
              "scrypt, so `patch` (a customer PATCH emitting `erp.crm.customer.updated`) shows the cost better.", ""]
    return lines


def markdown(results: dict[int, dict], args: argparse.Namespace, m: dict, ws: dict | None = None,
             events: dict | None = None) -> str:
    now = getattr(args, "generated", None) or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = getattr(args, "command", None) or "python -m loadtests.bench.report"
    lines = [
        "# Benchmark report", "",
        f"Generated {now} by `{command}` on the machine below "
        f"({m['cpu_model']}, {m['cpus']} cores, Python {m['python'].split()[-1]}, Granian {m['versions']['granian']}).", "",
        "![requests per second at saturation; p50 and p99 at saturation and at half load](chart.png)", "",
        "## Goals", "",
        "| issue | goal | measured | |", "|---|---|---|---|",
    ]
    lines += [f"| {issue} | {goal} | {measured} | {verdict if verdict == NOT_APPLICABLE else f'**{verdict}**'} |"
              for issue, goal, measured, verdict in goals(results, ws)]
    lines += [""]
    lines += machine_markdown(m, results)
    lines += [x.format(connections=args.connections, duration=args.duration, warmup=args.warmup, rounds=args.rounds,
                       half=args.half_load, half_duration=args.half_duration,
                       env=" ".join(f"{k}={v}" for k, v in GATEWAY_ENV.items())) for x in METHOD]
    rsa = (f"{m['rs256_verify_us']:.0f} µs of CPU each on this machine, measured at the start of the run"
           if m.get("rs256_verify_us") else "tens of µs of CPU each")
    lines += [x.replace("{rsa}", rsa) for x in TWIN]
    for workers, data in results.items():
        lines += table_markdown(workers, data)
    if ws:
        lines += ws_markdown(ws)
    if events:
        lines += events_markdown(events)
    lines += ["## Targets", ""]
    any_targets = next(iter(results.values()))["targets"]
    lines += [f"- `{name}` ({r['server']}) {r['method']} `{r['path']}`: {r['note']}" for name, r in any_targets.items()]
    return "\n".join(lines) + "\n"


# -- the chart --------------------------------------------------------------------------------


def chart(results: dict[int, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(next(iter(results.values()))["targets"])
    fig, (rps_ax, sat_ax, half_ax) = plt.subplots(1, 3, figsize=(18, 5.2))
    width = 0.8 / len(results)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (workers, data) in enumerate(results.items()):
        t = data["targets"]
        xs = [x + i * width for x in range(len(names))]
        color = colors[i % len(colors)]
        bars = rps_ax.bar(xs, [t[n]["rps"] for n in names], width, label=f"{workers} worker(s)", color=color)
        rps_ax.bar_label(bars, [f"{t[n]['ratio']:.2f}" for n in names], fontsize=7)  # vs bare, the figure to read
        for ax, key in ((sat_ax, None), (half_ax, "half")):
            rows = [t[n].get(key) if key else t[n] for n in names]
            p99 = [r["p99_ms"] if r else 0 for r in rows]
            p50 = [r["p50_ms"] if r else 0 for r in rows]
            ax.bar(xs, p99, width, color=color, alpha=0.45, label=f"p99, {workers} worker(s)")
            ax.bar(xs, p50, width, color=color, label=f"p50, {workers} worker(s)")
    half_ax.axhline(P99_GOAL_MS, color="red", linestyle="--", linewidth=1, label=f"goal: p99 < {P99_GOAL_MS:g} ms")
    titles = ((rps_ax, "requests per second, saturated (wrk); labels: ratio to bare Falcon"),
              (sat_ax, "latency ms, saturated (wrk, closed loop)"),
              (half_ax, "latency ms at half the saturating rate (open loop)"))
    for ax, title in titles:
        ax.set_xticks([x + width * (len(results) - 1) / 2 for x in range(len(names))], names, rotation=30, ha="right")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    for ax in (sat_ax, half_ax):
        ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(out: Path, results: dict[int, dict], args: argparse.Namespace, m: dict, ws: dict | None,
          events: dict | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "REPORT.md").write_text(markdown(results, args, m, ws, events))
    chart(results, out / "chart.png")


def render(args: argparse.Namespace) -> int:
    """REPORT.md and chart.png from an earlier run's results.json, with that run's settings."""
    saved = orjson.loads(args.render.read_bytes())
    settings = argparse.Namespace(**saved["settings"])
    results = {int(w): data for w, data in saved["http"].items()}
    write(args.out, results, settings, saved["machine"], saved["websocket"], saved["events"])
    log(f"wrote {args.out / 'REPORT.md'} and {args.out / 'chart.png'} from {args.render}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return render(args)
    args.command = " ".join(["python -m loadtests.bench.report", *(sys.argv[1:] if argv is None else argv)])
    if wrk.find_wrk() is None:
        log(f"wrk is not installed; install it with:\n    {wrk.INSTALL_HINT}")
        return 2
    started = time.monotonic()
    m = machine()
    results: dict[int, dict] = {}
    try:
        for workers in args.workers:
            results[workers] = run_workers(workers, args)
        ws = run_ws(args)
        events = run_events(args)
    except KeyboardInterrupt:
        log("interrupted; everything stopped, no report written")
        return 130
    except (RuntimeError, OSError) as exc:
        log(f"report failed: {exc}; no report written")
        return 1
    args.generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    write(args.out, results, args, m, ws, events)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    (args.out / "results.json").write_bytes(orjson.dumps(
        {"machine": m, "settings": settings, "http": results, "websocket": ws, "events": events,
         "goals": [dict(zip(("issue", "goal", "measured", "verdict"), g)) for g in goals(results, ws)],
         "seconds": round(time.monotonic() - started)},
        option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    log(f"wrote {args.out / 'REPORT.md'}, {args.out / 'chart.png'} and results.json in {time.monotonic() - started:.0f} s")
    bad = [f"{w} worker(s) {name}" for w, d in results.items() for name, r in d["targets"].items() if invalid(r)]
    if bad:
        log("!!! invalid rows (marked in the report): " + ", ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
