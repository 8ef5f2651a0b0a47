"""python -m loadtests.bench.events: what business events cost, against a real Kafka broker.

1. Login requests per second with events on and off, in the same run: two gateways (same
   workers, same backends), measured by wrk in interleaved rounds (off, on, off, on, ...);
   the table shows medians and the ratio on/off. Every login emits erp.auth.login.succeeded.
   The auth emulator's scrypt bounds logins (tens per second here), which hides what events
   cost, so a cheap write is measured the same way: PATCH of a customer (erp.crm.customer.updated).
2. Events per second one worker sustains into the broker: the worker's publisher (the same
   code a Granian worker runs) emits N events as fast as it can and waits until the broker has
   acknowledged them all (idempotent, acks=all); also the CPU one emit() takes on the caller's
   thread (thread time, so a busy machine does not inflate it), which is what a request pays.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

from emulator.kafka_broker import KafkaBroker
from emulator.services.seed import DEMO_PASSWORD
from loadtests.bench import wrk
from loadtests.bench.servers import (
    DEMO_EMAIL, GATEWAY_ENV, Client, Processes, _clean_env, start_backends, start_granian,
)
from runtime.config import load_config
from runtime.events.publisher import EventPublisher
from runtime.events.spool import Spool


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench.events", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=1, help="Granian workers of each gateway")
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=16, help="wrk connections")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are shown")
    p.add_argument("--events", type=int, default=100_000, help="events for the throughput measurement")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def request_rates(args: argparse.Namespace, broker: KafkaBroker, spool: Path) -> dict:
    with Processes() as processes:
        backends = start_backends(processes)
        common = {**backends, **GATEWAY_ENV}
        gateways = {
            "off": start_granian(processes, "events-off", args.workers, _clean_env(**common), ready_path="/health"),
            "on": start_granian(processes, "events-on", args.workers, _clean_env(
                **common, ERP_KAFKA_ENABLED="true", ERP_KAFKA_BROKERS=broker.bootstrap,
                ERP_KAFKA_TOPIC_PREFIX="bench", ERP_KAFKA_SPOOL_DIR=str(spool)), ready_path="/ready"),
        }
        login = orjson.dumps({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}).decode()
        client = Client(gateways["off"])
        status, raw = client.request("POST", "/api/v1/crm/customers", orjson.dumps(
            {"name": "Bench", "email": "bench@acme.example", "phone": "+1 555 0100", "status": "lead"}), client.token())
        if status != 201:
            raise RuntimeError(f"creating the customer to PATCH: HTTP {status} {raw[:200]!r}")
        customer = "/api/v1/crm/customers/" + orjson.loads(raw)["data"]["id"]
        cases = {  # name -> (path, method, body, token)
            "login": ("/api/v1/auth/login", "POST", login, None),
            "patch": (customer, "PATCH", '{"status": "active"}', client.token()),
        }
        runs: dict[tuple[str, str], list[wrk.Run]] = {}
        for case, (path, method, body, token) in cases.items():
            for base in gateways.values():  # warm-up, unmeasured
                wrk.run(base + path, duration=2, connections=args.connections, method=method, body=body,
                        authorization=f"Bearer {token}" if token else None)
            for round_ in range(args.rounds):
                for name, base in gateways.items():
                    run = wrk.run(base + path, duration=args.duration, connections=args.connections, method=method,
                                  body=body, authorization=f"Bearer {token}" if token else None)
                    if run.non_2xx or run.errors:
                        raise RuntimeError(f"{case}, events {name}: {run.non_2xx} non-2xx answers, {run.errors} errors")
                    runs.setdefault((case, name), []).append(run)
                    log(f"  round {round_ + 1} {case} events {name:3}: {run.rps:8.0f} req/s  p99 {run.p99_ms:.1f} ms")
    out = {}
    for case in cases:
        off = statistics.median(r.rps for r in runs[(case, "off")])
        on = statistics.median(r.rps for r in runs[(case, "on")])
        out[case] = {"off_rps": off, "on_rps": on, "ratio": on / off,
                     "p99_ms": {name: statistics.median(r.p99_ms for r in runs[(case, name)]) for name in ("off", "on")}}
    return out


def throughput(n: int, broker: KafkaBroker, spool: Path) -> dict:
    config = load_config(env={"ERP_KAFKA_BROKERS": broker.bootstrap, "ERP_KAFKA_TOPIC_PREFIX": "bench"})
    publisher = EventPublisher(config.kafka, spool=Spool(spool / "throughput", 1 << 30).open()).start()
    try:
        deadline = time.monotonic() + 60
        while publisher.mode != "direct" and time.monotonic() < deadline:
            time.sleep(0.05)
        data = {"user_id": "00000000-0000-0000-0000-000000000000", "email": "someone@acme.example",
                "organization_id": "00000000-0000-0000-0000-000000000001", "client_ip": "127.0.0.1"}
        started, cpu = time.perf_counter(), time.thread_time()
        for i in range(n):
            publisher.emit("erp.auth.login.succeeded", subject=f"user-{i % 1000}", data=data, request_id="bench")
        emit_cpu = time.thread_time() - cpu
        while publisher.counters.produced + publisher.counters.replayed < n and time.monotonic() < deadline + 120:
            time.sleep(0.005)
        done = time.perf_counter()
        counters = dict(vars(publisher.counters))
    finally:
        publisher.close(5)
    return {"events": n, "events_per_s": n / (done - started), "emit_us": emit_cpu / n * 1e6,
            "acknowledged": counters["produced"] + counters["replayed"], "spooled": counters["spooled"]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if wrk.find_wrk() is None:
        log(f"wrk is not installed ({wrk.INSTALL_HINT})")
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp, KafkaBroker() as broker:
        log(f"broker {broker.bootstrap}; requests: {args.rounds} rounds of {args.duration:g}s, "
            f"{args.connections} connections, {args.workers} worker(s)")
        logins = request_rates(args, broker, Path(tmp) / "spool")
        log(f"throughput: {args.events} events from one publisher")
        sustained = throughput(args.events, broker, Path(tmp))
    for case, r in logins.items():
        print(f"{case:5} events off {r['off_rps']:9.0f} req/s   p99 {r['p99_ms']['off']:.1f} ms")
        print(f"{case:5} events on  {r['on_rps']:9.0f} req/s   p99 {r['p99_ms']['on']:.1f} ms   ratio on/off {r['ratio']:.2f}")
    print(f"one worker into the broker: {sustained['events_per_s']:9.0f} events/s acknowledged "
          f"({sustained['acknowledged']}/{sustained['events']}; emit() {sustained['emit_us']:.1f} µs of CPU each "
          f"on the caller's thread; {sustained['spooled']} spooled)")
    if args.json:
        args.json.write_text(orjson.dumps({"logins": logins, "throughput": sustained}, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
