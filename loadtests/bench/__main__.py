"""python -m loadtests.bench: gateway endpoints side by side with a bare Falcon baseline.

Each round runs baseline, target, baseline, target... so that drift on a noisy shared machine
hits both sides of every ratio; the table shows medians over rounds.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import signal
import statistics
import sys
from pathlib import Path

import orjson

from loadtests.bench import wrk
from loadtests.bench.mix import print_mix, run_mix
from loadtests.bench.servers import GATEWAY_ENV, Client, Processes, group_cpu_seconds, start_servers
from loadtests.bench.targets import BASELINE, TARGETS, Target


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=1, help="Granian workers, for the gateway and the baseline alike")
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (keep-alive)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table shows medians")
    # One wrk thread leaves the other core of a 2-core machine to the server under test.
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--warmup", type=float, default=2, help="seconds of unmeasured load per target first")
    p.add_argument("--target", action="append", choices=[t.name for t in TARGETS],
                   help="only these targets (repeatable; default: all)")
    p.add_argument("--mix-requests", type=int, default=2000,
                   help="then this many GET/PATCH requests one at a time, counting backend calls (0: skip)")
    p.add_argument("--mix-hit-rate", type=float, default=0.95, help="the cache hit rate the mix is built for")
    p.add_argument("--mix-ids", type=int, default=4, help="customers the mix reads in turn")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.connections < args.threads:
        p.error("--connections must be at least --threads")
    if not 0 <= args.mix_hit_rate < 1:
        p.error("--mix-hit-rate must be in [0, 1)")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace, servers: dict[str, str], groups: dict[str, int] | None = None) -> None:
        self.args = args
        self.groups = groups or {}  # server name -> its process group, for CPU per request
        self.clients = {name: Client(base) for name, base in servers.items()}
        self.paths: dict[str, str] = {}

    def prepare(self, target: Target) -> None:
        """Resolve the path and send one request: refuse to benchmark an endpoint that fails."""
        client = self.clients[target.server]
        path = target.path(self.clients["gateway"]) if callable(target.path) else target.path
        body = target.body.encode() if target.body is not None else None
        status, raw = client.request(target.method, path, body, token=self._token(target))
        if not 200 <= status < 300:
            raise RuntimeError(f"{target.name}: {target.method} {path} answers HTTP {status}: {raw[:300]!r}; "
                               "refusing to benchmark errors")
        self.paths[target.name] = path

    def measure(self, target: Target, duration: float) -> wrk.Run:
        token = self._token(target)
        group = self.groups.get(target.server)
        cpu = group_cpu_seconds(group) if group is not None else 0.0
        run = wrk.run(
            self.clients[target.server].base + self.paths[target.name],
            duration=duration, connections=self.args.connections, threads=self.args.threads,
            method=target.method, body=target.body, authorization=f"Bearer {token}" if token else None,
        )
        if group is not None and run.requests:
            # The server's own CPU per answer: steady on a shared machine, where req/s is not.
            run = dataclasses.replace(run, cpu_us=(group_cpu_seconds(group) - cpu) / run.requests * 1e6)
        return run

    def _token(self, target: Target) -> str | None:
        return self.clients["gateway"].token() if target.auth else None

    def run(self, targets: list[Target]) -> dict:
        args = self.args
        everything = [BASELINE, *targets]
        for target in everything:
            self.prepare(target)
        if args.warmup > 0:  # fill caches, JIT-free but lazy imports, connection pools
            log(f"warm-up: {args.warmup:g}s per target")
            for target in everything:
                self.measure(target, args.warmup)
        runs: dict[str, list[wrk.Run]] = {t.name: [] for t in everything}
        ratios: dict[str, list[float]] = {t.name: [] for t in targets}
        cpu_ratios: dict[str, list[float]] = {t.name: [] for t in targets}
        for round_ in range(1, args.rounds + 1):
            for target in targets:
                base, run = self.measure(BASELINE, args.duration), self.measure(target, args.duration)
                runs[BASELINE.name].append(base)
                runs[target.name].append(run)
                # Each target run is compared with the baseline run just before it.
                ratios[target.name].append(run.rps / base.rps if base.rps else 0.0)
                cpu_ratios[target.name].append(base.cpu_us / run.cpu_us if run.cpu_us else 0.0)
                log(f"round {round_}/{args.rounds}  {BASELINE.name} {base.rps:9,.0f} req/s {base.cpu_us:6.1f} µs CPU   "
                    f"{target.name} {run.rps:9,.0f} req/s {run.cpu_us:6.1f} µs CPU   ratio {ratios[target.name][-1]:.2f}"
                    f"   CPU ratio {cpu_ratios[target.name][-1]:.2f}")
        return {t.name: summarize(t, self.paths[t.name], runs[t.name], ratios.get(t.name, [1.0]),
                                  cpu_ratios.get(t.name, [1.0])) for t in everything}


def summarize(target: Target, path: str, runs: list[wrk.Run], ratios: list[float], cpu_ratios: list[float]) -> dict:
    med = lambda values: statistics.median(values)  # noqa: E731
    return {
        "server": target.server, "method": target.method, "path": path, "note": target.note,
        "mirrors": target.mirrors,
        "rps": med([r.rps for r in runs]),
        "p50_ms": med([r.p50_ms for r in runs]),
        "p99_ms": med([r.p99_ms for r in runs]),
        "non_2xx": sum(r.non_2xx for r in runs),
        "errors": sum(r.errors for r in runs),
        "ratio": med(ratios),
        # The server's CPU µs per request (all its processes), and the baseline's over this
        # target's: the throughput ratio the server would reach with a core to itself.
        "cpu_us": med([r.cpu_us for r in runs]),
        "cpu_ratio": med(cpu_ratios),
        "runs": [r.as_dict() for r in runs],
    }


def print_table(results: dict, args: argparse.Namespace) -> None:
    env = " ".join(f"{k}={v}" for k, v in GATEWAY_ENV.items())
    print(f"\nGranian {args.workers} worker(s), wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, "
          f"{args.rounds} round(s), medians; gateway run with {env}; {os.cpu_count()} CPUs")
    header = ("target", "path", "req/s", "p50 ms", "p99 ms", "non-2xx", "errors", f"vs {BASELINE.name}",
              "CPU µs/req", f"CPU vs {BASELINE.name}")
    rows = [header] + [
        (name, r["path"], f"{r['rps']:,.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
         str(r["non_2xx"]), str(r["errors"]), f"{r['ratio']:.2f}", f"{r['cpu_us']:.1f}", f"{r['cpu_ratio']:.2f}")
        for name, r in results.items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C, so every child gets stopped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if wrk.find_wrk() is None:
        log(f"wrk is not installed; install it with:\n    {wrk.INSTALL_HINT}")
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    targets = [t for t in TARGETS if not args.target or t.name in args.target]
    try:
        with Processes() as processes:
            log(f"starting backends, the gateway and the baseline on Granian ({args.workers} worker(s))")
            servers = start_servers(processes, args.workers, {t.server for t in targets})
            groups = {name: processes.pid(name) for name in ("gateway", "hello")}
            bench = Bench(args, servers, groups)
            results = bench.run(targets)
            mix = None
            if args.mix_requests > 0:
                log(f"read/write mix: {args.mix_requests} requests")
                mix = run_mix(bench.clients["gateway"], bench.clients["emulator"], args.mix_requests,
                              args.mix_hit_rate, args.mix_ids)
            log("stopping everything")
    except KeyboardInterrupt:
        log("interrupted; everything stopped")
        return 130
    except (RuntimeError, OSError) as exc:
        log(f"bench failed: {exc}")
        return 1

    print_table(results, args)
    if mix is not None:
        print_mix(mix)
    failed = {name: r for name, r in results.items() if r["non_2xx"] or r["errors"]}
    if args.json:
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        args.json.write_bytes(orjson.dumps({
            "settings": {**settings, "gateway_env": GATEWAY_ENV},
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "baseline": BASELINE.name,
            "ok": not failed,
            "targets": results,
            "mix": mix,
        }, option=orjson.OPT_INDENT_2))
    if failed:
        log("\n" + "!" * 78)
        for name, r in failed.items():
            log(f"!!! {name}: {r['non_2xx']} non-2xx responses, {r['errors']} socket errors/timeouts")
        log("!!! these numbers measure failures, not the gateway: do not compare or publish them")
        log("!" * 78)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
