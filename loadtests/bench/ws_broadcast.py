"""python -m loadtests.bench.ws_broadcast: WebSocket memory and broadcast latency, side by side.

Two servers with the same Granian flags and one worker each: the bare ASGI WebSocket app
(loadtests/bench/ws_bare_app.py: accept, keep, send to all on POST /broadcast) and the
gateway (/ws, authenticated sockets, published through POST /api/v1/notifications on
system:broadcast, fanned out through Valkey). For each: open N sockets from this process,
read the worker's RSS before and after (KiB per socket), then broadcast B times and time
every delivery from just before the POST to the frame's arrival here (p50, p99, max, and
the p99 over broadcasts of the time until the LAST socket had it).

The clients are spread over `--clients` processes on the same machine, so absolute latencies
include their own queueing; the bare baseline pays exactly the same, which is why both run
in the same invocation. Read the ratios, the worker CPU per delivered message (from /proc,
which the clients do not disturb) and the gateway's KiB per socket above the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import orjson

from loadtests.bench.servers import GATEWAY_ENV, Client, Processes, _clean_env, start_backends, start_granian

BARE_FACTORY = "loadtests.bench.ws_bare_app:create_app"
SOCKET_EMAIL = "viewer@acme.example"
PUBLISHER_EMAIL = "super-admin@acme.example"  # system:broadcast needs realtime.broadcast:send


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench.ws_broadcast", description=__doc__.split("\n\n")[0])
    p.add_argument("--sockets", type=int, default=5000)
    p.add_argument("--broadcasts", type=int, default=20)
    p.add_argument("--gap", type=float, default=0.5, help="seconds between broadcasts")
    p.add_argument("--clients", type=int, default=4, help="client processes the sockets are spread over")
    p.add_argument("--only", choices=("bare", "gateway"), help="measure one server only")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def worker_rss_kib(granian_pid: int) -> int:
    """Resident memory of the Granian worker processes (the children of its master)."""
    children = Path(f"/proc/{granian_pid}/task/{granian_pid}/children").read_text().split()
    total = 0
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


class Sockets:
    """Client sockets of one process; `arrivals[k]` holds when each got broadcast k."""

    def __init__(self, url: str, headers: dict[str, str], gateway: bool) -> None:
        self.url, self.headers, self.gateway = url, headers, gateway
        self.connections: list = []
        self.readers: list[asyncio.Task] = []
        self.ready = 0
        self.arrivals: dict[int, list[float]] = {}
        self.errors = 0

    async def open(self, n: int) -> None:
        import websockets

        limit = asyncio.Semaphore(100)

        async def one() -> None:
            async with limit:
                ws = await websockets.connect(self.url, additional_headers=self.headers, compression=None,
                                              open_timeout=120, ping_interval=None, max_queue=None)
                self.connections.append(ws)
                self.readers.append(asyncio.get_running_loop().create_task(self._read(ws)))

        await asyncio.gather(*(one() for _ in range(n)))
        if self.gateway:
            while self.ready < n:  # noqa: ASYNC110  (counted by n reader tasks; a poll is simplest)
                await asyncio.sleep(0.05)

    async def _read(self, ws) -> None:
        perf = time.perf_counter
        arrivals = self.arrivals
        try:
            async for raw in ws:
                now = perf()
                doc = orjson.loads(raw)
                if self.gateway:
                    kind = doc.get("type")
                    if kind == "ping":
                        await ws.send('{"type":"pong"}')
                        continue
                    if kind == "connected":
                        self.ready += 1
                        continue
                    if kind != "message":
                        continue
                    doc = doc["data"]
                arrivals.setdefault(doc["k"], []).append(now)
        except asyncio.CancelledError:
            pass
        except Exception:
            self.errors += 1

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*(ws.close() for ws in self.connections), return_exceptions=True)


def worker_cpu_s(granian_pid: int) -> float:
    """User + system CPU seconds of the Granian worker processes so far."""
    children = Path(f"/proc/{granian_pid}/task/{granian_pid}/children").read_text().split()
    ticks = 0
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def client_process(ws_url: str, headers: dict, gateway: bool, n: int, conn) -> None:
    """One client process: open `n` sockets, say so, record arrival times until told to stop,
    then send them back ({k: [perf_counter, ...]}). perf_counter is CLOCK_MONOTONIC, shared
    by every process of the machine, so the parent's send times compare with these."""
    gc.disable()

    async def run() -> None:
        sockets = Sockets(ws_url, headers, gateway)
        await sockets.open(n)
        conn.send(("open", n))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        await sockets.close()
        conn.send(("arrivals", sockets.arrivals, sockets.errors))

    asyncio.run(run())


async def measure(name: str, base: str, pid: int, args: argparse.Namespace, token: str | None,
                  publisher: Client | None) -> dict:
    gateway = name == "gateway"
    ws_url = base.replace("http://", "ws://") + ("/ws" if gateway else "/")
    headers = {"Authorization": f"Bearer {token}"} if gateway else {}
    # Warm up (first sockets allocate pools, import paths, ...) so RSS growth is per socket.
    warm = Sockets(ws_url, headers, gateway)
    await warm.open(50)
    await warm.close()
    await asyncio.sleep(1.0)
    before = worker_rss_kib(pid)
    started = time.perf_counter()
    shares = [args.sockets // args.clients + (i < args.sockets % args.clients) for i in range(args.clients)]
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    for share in shares:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=client_process, args=(ws_url, headers, gateway, share, child), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    for parent in pipes:
        kind, _ = await asyncio.to_thread(parent.recv)
        assert kind == "open"
    opened_in = time.perf_counter() - started
    await asyncio.sleep(1.5)
    after = worker_rss_kib(pid)
    log(f"{name}: {args.sockets} sockets open in {opened_in:.1f}s ({args.clients} client processes); "
        f"worker RSS {before} -> {after} KiB")
    body_path = "/api/v1/notifications" if gateway else "/broadcast"
    sent_at: dict[int, float] = {}
    cpu_before = worker_cpu_s(pid)
    for k in range(args.broadcasts):
        payload = {"k": k, "note": "x" * 100}  # ~190 bytes on the wire, as in the field notes
        body = orjson.dumps({"channel": "system:broadcast", "data": payload} if gateway else payload)
        sent_at[k] = time.perf_counter()
        if gateway:
            assert publisher is not None
            status, raw = await asyncio.to_thread(publisher.request, "POST", body_path, body, token=publisher.token())
        else:
            status, raw = await asyncio.to_thread(Client(base).request, "POST", body_path, body)
        if status >= 300:
            raise RuntimeError(f"{name}: broadcast answered {status}: {raw[:300]!r}")
        await asyncio.sleep(args.gap)
    await asyncio.sleep(2.0)  # stragglers
    cpu = worker_cpu_s(pid) - cpu_before
    latencies: dict[int, list[float]] = {k: [] for k in range(args.broadcasts)}
    errors = 0
    for parent in pipes:
        parent.send("stop")
    for parent, proc in zip(pipes, procs):
        kind, arrivals, errs = await asyncio.to_thread(parent.recv)
        errors += errs
        for k, times in arrivals.items():
            latencies[k] += [t - sent_at[k] for t in times]
        proc.join(10)
    missing = {k: args.sockets - len(v) for k, v in latencies.items() if len(v) != args.sockets}
    if missing:
        raise RuntimeError(f"{name}: broadcasts not delivered to every socket (missing per broadcast: {missing})")
    every = sorted(x for v in latencies.values() for x in v)
    to_last = sorted(max(v) for v in latencies.values())
    deliveries = len(every)
    result = {
        "sockets": args.sockets,
        "broadcasts": args.broadcasts,
        "rss_kib_before": before,
        "rss_kib_after": after,
        "kib_per_socket": round((after - before) / args.sockets, 2),
        "p50_ms": round(1000 * every[len(every) // 2], 2),
        "p99_ms": round(1000 * every[int(len(every) * 0.99)], 2),
        "max_ms": round(1000 * every[-1], 2),
        "to_last_p99_ms": round(1000 * to_last[min(len(to_last) - 1, int(len(to_last) * 0.99))], 2),
        "to_last_median_ms": round(1000 * statistics.median(to_last), 2),
        "worker_cpu_us_per_delivery": round(1e6 * cpu / deliveries, 1),
        "deliveries": deliveries,
        "client_errors": errors,
    }
    log(f"{name}: {result}")
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    gc.disable()  # the clients' own GC pauses would show up as server latency
    results: dict[str, dict] = {}
    with Processes() as processes:
        backends = start_backends(processes)
        env = _clean_env(**backends, **GATEWAY_ENV, ERP_REALTIME_MAX_CONNECTIONS_PER_USER="1000000")
        servers: dict[str, tuple[str, int]] = {}
        if args.only in (None, "bare"):
            base = start_granian(processes, "bare", 1, _clean_env(), factory=BARE_FACTORY)
            servers["bare"] = (base, processes._children[-1][1].pid)
        if args.only in (None, "gateway"):
            base = start_granian(processes, "gateway", 1, env, ready_path="/health")
            servers["gateway"] = (base, processes._children[-1][1].pid)
        token = publisher = None
        if "gateway" in servers:
            viewer = Client(servers["gateway"][0])
            from emulator.services.seed import DEMO_PASSWORD

            status, raw = viewer.request("POST", "/api/v1/auth/login",
                                         orjson.dumps({"email": SOCKET_EMAIL, "password": DEMO_PASSWORD}))
            assert status == 200, raw
            token = orjson.loads(raw)["data"]["access_token"]
            publisher = Client(servers["gateway"][0])
            publisher.token = _token_for(publisher, PUBLISHER_EMAIL)  # type: ignore[method-assign]
        for name, (base, pid) in servers.items():
            results[name] = asyncio.run(measure(name, base, pid, args, token, publisher))
    print_table(results)
    if args.json:
        args.json.write_bytes(orjson.dumps({"results": results, "args": vars(args) | {"json": str(args.json)}},
                                           option=orjson.OPT_INDENT_2))


def _token_for(client: Client, email: str):
    from emulator.services.seed import DEMO_PASSWORD

    status, raw = client.request("POST", "/api/v1/auth/login", orjson.dumps({"email": email, "password": DEMO_PASSWORD}))
    if status != 200:
        raise RuntimeError(f"login as {email} failed: {status} {raw[:200]!r}")
    token = orjson.loads(raw)["data"]["access_token"]
    return lambda: token


def print_table(results: dict[str, dict]) -> None:
    rows = [("server", "sockets", "KiB/socket", "p50 ms", "p99 ms", "max ms", "last p99 ms", "CPU us/delivery")]
    for name, r in results.items():
        rows.append((name, str(r["sockets"]), f"{r['kib_per_socket']:.1f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
                     f"{r['max_ms']:.1f}", f"{r['to_last_p99_ms']:.1f}", f"{r['worker_cpu_us_per_delivery']:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    if {"bare", "gateway"} <= results.keys():
        extra = results["gateway"]["kib_per_socket"] - results["bare"]["kib_per_socket"]
        print(f"gateway overhead above a bare ASGI socket on Granian: {extra:.1f} KiB per socket "
              f"(goal: under 10); p99 ratio {results['gateway']['p99_ms'] / max(results['bare']['p99_ms'], 0.001):.2f}")


if __name__ == "__main__":
    main()
