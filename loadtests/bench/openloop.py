"""Open-loop load at a constant rate, latency measured from when each request was due.

wrk is closed-loop: each connection sends its next request when the last one is answered, so
a server that stalls also stalls the load, and the requests that would have waited are never
sent: the percentiles leave out exactly the slow moments ("coordinated omission"). wrk2 fixes
that, but Debian ships only wrk, and wrk's Lua hooks (`delay`, `request`, `response`) are not
told which connection they run for, so a script cannot time a response from its due time.

So: request i of a run is due at start + i / rate, whatever happened before. A process sends
each request when it falls due on an idle keep-alive connection; if every connection is busy
the request waits in a queue, and its latency is counted from its due time, not from its send
(what a user arriving at that moment would see). Two figures show that the generator itself
keeps up: the rate it actually sent at, and how late it sent (`send_lag`: send time minus due
time). A generator that falls behind shows a lag, not a flattering p99.

Higher rates are split over several processes (`--processes`), each with its own share of the
schedule, since one Python process sends ~10-15k requests per second at most.

    python -m loadtests.bench.openloop http://127.0.0.1:8000/health --rate 2000 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
import multiprocessing
import sys
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

# One Python process can send about this many small requests a second on this machine's cores
# with room to spare; above it the schedule is split over more processes.
RATE_PER_PROCESS = 6000


@dataclass(frozen=True)
class Spec:
    """One process's share of a run."""

    host: str
    port: int
    request: bytes
    rate: float  # this process's requests per second
    offset: float  # its first request is due this long after the common start
    duration: float
    warmup: float
    connections: int
    start_at: float  # time.monotonic() (one clock for every process on Linux)


@dataclass(frozen=True)
class OpenLoopRun:
    rate: float  # asked for
    sent_rate: float  # requests sent per second in the measured window
    requests: int  # answered in the measured window
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    send_lag_p99_ms: float  # how late the generator sent (due -> sent), p99
    send_lag_max_ms: float
    queued: int  # requests that found every connection busy and waited for one (their wait is in the latency)
    non_2xx: int
    errors: int  # requests that got no answer (connection lost, or still unanswered at the end)
    processes: int
    connections: int

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def kept_rate(self) -> bool:
        """Did the generator send at the rate asked (within 2%)?"""
        return self.sent_rate >= 0.98 * self.rate


def build_request(url: str, method: str = "GET", body: str | None = None, authorization: str | None = None) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// URLs: {url}")
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.hostname}:{port}"]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    payload = (body or "").encode()
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return parts.hostname, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; responses must carry a
    Content-Length (every server the bench runs sends one)."""

    def __init__(self, gen: "_Generator") -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.due = 0.0  # due time of the request in flight, 0 when idle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, due: float) -> None:
        assert self.transport is not None
        self.due = due
        self.transport.write(self.gen.spec.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self.gen.fail(self, "a response without Content-Length")
                return
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17:stop if stop > 0 else None])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            status = int(self.buffer[9:12])
            self.buffer = self.buffer[total:]
            due, self.due = self.due, 0.0
            self.gen.answered(self, due, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.gen.lost(self)


class _Generator:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.idle: collections.deque[_Connection] = collections.deque()
        self.waiting: collections.deque[float] = collections.deque()  # due times with no idle connection
        self.measure_from = spec.start_at + spec.warmup
        self.measure_until = self.measure_from + spec.duration
        self.latencies: list[float] = []
        self.lags: list[float] = []
        self.sent = self.queued = self.non_2xx = self.errors = 0
        self.in_flight = 0
        self.drained: asyncio.Future | None = None  # set once the schedule is over and nothing is in flight

    async def run(self) -> dict:
        loop = asyncio.get_running_loop()
        for _ in range(self.spec.connections):
            _, conn = await loop.create_connection(lambda: _Connection(self), self.spec.host, self.spec.port)
            self.idle.append(conn)
        interval = 1.0 / self.spec.rate
        total = int((self.spec.warmup + self.spec.duration) * self.spec.rate)
        first = self.spec.start_at + self.spec.offset
        i = 0
        while i < total:
            now = time.monotonic()
            due = first + i * interval
            if due > now:
                # At least 1 ms: the loop's timers have millisecond resolution, a shorter sleep
                # wakes at once and spins. The send lag shows what this costs (about 1 ms).
                await asyncio.sleep(max(due - now, 0.001))
                continue
            # Everything due by now goes out in this pass: a late wake-up catches up at once.
            while i < total and first + i * interval <= now:
                self.dispatch(first + i * interval, now)
                i += 1
        # Let the last requests finish, within a bound: still unanswered then counts as an error.
        if self.in_flight:
            self.drained = loop.create_future()
            try:
                await asyncio.wait_for(self.drained, max(5.0, 2 * self.spec.duration))
            except TimeoutError:
                self.errors += self.in_flight
        return {"latencies": self.latencies, "lags": self.lags, "sent": self.sent, "queued": self.queued,
                "non_2xx": self.non_2xx, "errors": self.errors}

    def dispatch(self, due: float, now: float) -> None:
        """Request `due` leaves the schedule at `now`: how late that is is the generator's own lag."""
        if self.measure_from <= due < self.measure_until:
            self.lags.append(now - due)
        if self.measure_from <= now < self.measure_until:
            self.sent += 1
        self.in_flight += 1
        if self.idle:
            self.idle.popleft().send(due)
        else:
            self.waiting.append(due)  # the server holds every connection: wait, the clock runs
            self.queued += 1

    def answered(self, conn: _Connection, due: float, status: int) -> None:
        now = time.monotonic()
        self.in_flight -= 1
        if self.measure_from <= due < self.measure_until:
            self.latencies.append(now - due)
            if not 200 <= status < 300:
                self.non_2xx += 1
        if self.waiting:
            conn.send(self.waiting.popleft())
        else:
            self.idle.append(conn)
        if not self.in_flight and self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def fail(self, conn: _Connection, why: str) -> None:
        print(f"openloop: {why}; closing the connection", file=sys.stderr)
        if conn.transport is not None:
            conn.transport.close()

    def lost(self, conn: _Connection) -> None:
        if conn.due:  # a request was in flight: it got no answer
            self.errors += 1
            self.in_flight -= 1
            conn.due = 0.0
        if conn in self.idle:
            self.idle.remove(conn)
        # Replace it, so the run keeps its connection count.
        asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            _, conn = await asyncio.get_running_loop().create_connection(lambda: _Connection(self), self.spec.host, self.spec.port)
        except OSError:
            return
        if self.waiting:
            conn.send(self.waiting.popleft())
        else:
            self.idle.append(conn)


def _child(spec: Spec) -> dict:
    import uvloop  # a dependency on Linux; the stdlib loop would add its own latency

    async def go() -> dict:
        return await _Generator(spec).run()

    return uvloop.run(go())


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))]


def run(url: str, *, rate: float, duration: float, connections: int = 50, warmup: float = 1.0,
        processes: int | None = None, method: str = "GET", body: str | None = None,
        authorization: str | None = None) -> OpenLoopRun:
    """`rate` requests per second for `duration` seconds (after `warmup` seconds at the same
    rate, not counted), spread over `connections` keep-alive connections in all."""
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    host, port, request = build_request(url, method, body, authorization)
    n = processes or max(1, math.ceil(rate / RATE_PER_PROCESS))
    n = min(n, connections)
    start_at = time.monotonic() + 1.0 + 0.3 * n  # time for the processes to start and connect
    specs = [Spec(host, port, request, rate / n, i / rate, duration, warmup, connections // n + (i < connections % n),
                  start_at) for i in range(n)]
    with multiprocessing.get_context("spawn").Pool(n) as pool:
        parts = pool.map(_child, specs)
    latencies = sorted(x for p in parts for x in p["latencies"])
    lags = sorted(x for p in parts for x in p["lags"])
    ms = 1000.0
    return OpenLoopRun(
        rate=rate, sent_rate=sum(p["sent"] for p in parts) / duration, requests=len(latencies),
        p50_ms=percentile(latencies, 50) * ms, p90_ms=percentile(latencies, 90) * ms,
        p99_ms=percentile(latencies, 99) * ms, max_ms=(latencies[-1] if latencies else 0.0) * ms,
        send_lag_p99_ms=percentile(lags, 99) * ms, send_lag_max_ms=(lags[-1] if lags else 0.0) * ms,
        queued=sum(p["queued"] for p in parts),
        non_2xx=sum(p["non_2xx"] for p in parts), errors=sum(p["errors"] for p in parts),
        processes=n, connections=connections,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench.openloop", description=__doc__.split("\n\n")[0])
    p.add_argument("url")
    p.add_argument("--rate", type=float, required=True, help="requests per second")
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--warmup", type=float, default=1)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--processes", type=int, help=f"default: one per {RATE_PER_PROCESS:,} req/s")
    p.add_argument("--method", default="GET")
    p.add_argument("--body")
    p.add_argument("--authorization")
    args = p.parse_args(argv)
    r = run(args.url, rate=args.rate, duration=args.duration, connections=args.connections, warmup=args.warmup,
            processes=args.processes, method=args.method, body=args.body, authorization=args.authorization)
    print(f"asked {r.rate:,.0f} req/s, sent {r.sent_rate:,.0f} req/s ({r.processes} process(es), {r.connections} connections)")
    print(f"latency from due time: p50 {r.p50_ms:.2f} ms  p90 {r.p90_ms:.2f}  p99 {r.p99_ms:.2f}  max {r.max_ms:.2f}")
    print(f"generator send lag: p99 {r.send_lag_p99_ms:.2f} ms  max {r.send_lag_max_ms:.2f}")
    print(f"queued for a connection {r.queued}  non-2xx {r.non_2xx}  errors {r.errors}")
    return 0 if not (r.non_2xx or r.errors) else 1


if __name__ == "__main__":
    sys.exit(main())
