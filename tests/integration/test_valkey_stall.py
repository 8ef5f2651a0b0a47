"""A stalled Valkey costs a request at most a few milliseconds (issue 9.4).

`SIGSTOP` leaves valkey-server accepting connections (the kernel does that) but answering
nothing: the worst kind of outage, because every command waits its whole timeout. Under a
steady load of cached reads, the first commands after the stop wait out `redis.timeout` (1 s);
that opens the request path's breaker, and from then on the reads go straight to the backend:
the issue asks for a p99 under 50 ms after the first second (a bound the issue itself sets,
so it is asserted here, on the gateway's own clock: the access log's duration of each read;
what the test client saw, its own CPU time on a shared machine included, is printed and
bounded far below the 1 s timeout). After `SIGCONT` the breaker's probe finds Valkey again and the reads
come from the cache within a few seconds.

The backends run in a `gw backends` process of their own and the gateway on its own
valkey-server, so the only thing stalled is what the test stalls.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from emulator.envfile import wait_for_env_file
from emulator.processes import stop
from emulator.valkey import EmbeddedValkey
from tests.support import DEMO_PASSWORD, GW, clean_env, granian_env, start_gateway

LIST = "/api/v1/crm/customers"
WITNESS = LIST + "?page_size=19"  # another entry of the same list, read by nobody but the witness
CONCURRENCY = 4


@pytest.fixture(scope="module")
def stalled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stall")
    env_file, log = folder / "backends.env", folder / "gateway.log"
    backends = subprocess.Popen([*GW, "backends", "--free-ports", "--env-file", str(env_file)],
                                env=clean_env(), stdout=subprocess.DEVNULL)
    server = gateway = None
    try:
        env = wait_for_env_file(env_file, backends, 60)
        server = EmbeddedValkey().start()
        with open(log, "wb") as sink:  # the access log: each request's time inside the gateway
            gateway, url = start_gateway(granian_env(env, ERP_REDIS_HOST=server.host, ERP_REDIS_PORT=str(server.port),
                                                     ERP_LOGGING_LEVEL="info"), stderr=sink)
        yield server, url, log
    finally:
        stop(gateway)
        if server is not None:
            os.kill(server.process.pid, signal.SIGCONT)  # in case the test stopped it and failed
            server.stop()
        stop(backends)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def gateway_times(log: Path, since: float, until: float) -> list[float]:
    """Seconds each list read spent in the gateway (access log), for reads started in [since, until)."""
    times = []
    for line in log.read_text().splitlines():
        if '"gateway.access"' not in line:
            continue
        entry = json.loads(line)
        if entry["path"] != LIST:
            continue
        ended = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).timestamp()
        took = entry["duration_ms"] / 1000
        if since <= ended - took < until:
            times.append(took)
    return times


async def load(url: str, token: str, until: asyncio.Event, samples: list) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10, headers={"Authorization": f"Bearer {token}"}) as client:
        while not until.is_set():
            started = time.monotonic()
            answer = await client.get(LIST)
            samples.append((started, time.monotonic() - started, answer.status_code, answer.headers.get("X-Cache")))


def test_a_stalled_valkey_costs_cached_reads_only_its_first_second(stalled):
    server, url, log = stalled
    login = httpx.post(url + "/api/v1/auth/login", json={"email": "admin@acme.example", "password": DEMO_PASSWORD})
    assert login.status_code == 200, login.text
    token = login.json()["data"]["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 10
    for path in (LIST, WITNESS):  # both in the cache
        while httpx.get(url + path, headers=auth).headers.get("X-Cache") != "HIT":
            assert time.monotonic() < deadline, "the list never came from the cache"

    async def scenario():
        samples: list = []
        done = asyncio.Event()
        clients = [asyncio.create_task(load(url, token, done, samples)) for _ in range(CONCURRENCY)]
        try:
            await asyncio.sleep(1.0)
            os.kill(server.process.pid, signal.SIGSTOP)
            stopped = time.monotonic(), time.time()
            await asyncio.sleep(3.5)
            os.kill(server.process.pid, signal.SIGCONT)
            resumed = time.monotonic(), time.time()
            # A key nobody else reads: its HIT comes from Valkey, not from a shared load.
            async with httpx.AsyncClient(base_url=url, timeout=10, headers=auth) as witness:
                while time.monotonic() - resumed[0] < 10:
                    if (await witness.get(WITNESS)).headers.get("X-Cache") == "HIT":
                        break
                    await asyncio.sleep(0.02)
            back = time.monotonic() - resumed[0]
        finally:
            done.set()
            await asyncio.gather(*clients)
        return samples, stopped, resumed, back

    samples, (stopped, stopped_at), (resumed, resumed_at), back = asyncio.run(scenario())
    assert {s[2] for s in samples} == {200}  # nobody saw an error: the reads went to the backend
    stalled_reads = [s for s in samples if stopped + 1.0 <= s[0] < resumed]
    assert len(stalled_reads) >= 50
    # Read through to the backend (requests of the worker that asked at the same moment share
    # one load and say HIT: single flight works without Valkey too).
    assert "MISS" in {s[3] for s in stalled_reads}
    inside = gateway_times(log, stopped_at + 1.0, resumed_at)
    seen = [s[1] for s in stalled_reads]
    p99, seen_p99 = percentile(inside, 99), percentile(seen, 99)
    print(f"\nstalled Valkey, reads after its first second: {len(inside)} in the gateway, p50 "
          f"{percentile(inside, 50) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {max(inside) * 1000:.1f} ms; "
          f"as the test client saw them p50 {percentile(seen, 50) * 1000:.1f} ms, p99 {seen_p99 * 1000:.1f} ms; "
          f"back to the cache {back:.2f} s after SIGCONT")
    assert len(inside) >= 50
    assert p99 < 0.050, p99  # the bound, on the gateway's own clock
    # Seen from the client too (its own CPU time included on a shared machine): nobody waited
    # anything like the 1 s timeout.
    assert seen_p99 < 0.5, seen_p99
    assert back < 5
