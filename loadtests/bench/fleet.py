"""python -m loadtests.bench.fleet: the hot path's two cross-instance promises, measured.

    python -m loadtests.bench.fleet [--pairs 500] [--hammer 3]

Starts `gw backends` and two gateway instances of two Granian workers each on one Valkey, then:

- staleness: `--pairs` times, a PATCH of a customer through instance A, then GETs of it
  through instance B (a fresh connection each, so any of B's workers answers, from its near
  cache when it holds the entry) until B serves the new value. Staleness is how long after
  A's answer B last served the old value (0 when its first read was fresh).
- overshoot: one user with a limit of 600/min (synced: each worker's allowance is 15, so at
  most 4 x 15 = 60 = 10% more than exact), hammered through both instances by 8 threads for
  `--hammer` seconds. GCRA admits the burst (600) plus 10/s: overshoot is what was admitted
  beyond that. The same run in exact mode is the control.

tests/e2e/test_hot_path_fleet.py runs both with smaller counts and asserts the bounds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import httpx

from emulator.envfile import wait_for_env_file
from emulator.processes import stop
from emulator.services.seed import DEMO_PASSWORD
from tests.support import GW, clean_env, granian_env, start_gateway

EDITOR = "sales-manager@acme.example"


class Fleet:
    """`gw backends` and `instances` gateways of `workers` workers each (one Valkey)."""

    def __init__(self, backends: dict[str, str], instances: int = 2, workers: int = 2, **env: str) -> None:
        self.env = granian_env(backends, ERP_RATE_LIMITS_FLEET_WORKERS=str(instances * workers), **env)
        self.processes: list[subprocess.Popen] = []
        self.urls: list[str] = []
        try:
            for _ in range(instances):
                process, url = start_gateway(self.env, workers=workers)
                self.processes.append(process)
                self.urls.append(url)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for process in self.processes:
            stop(process)


def sign_in(url: str, email: str = EDITOR) -> dict[str, str]:
    answer = httpx.post(url + "/api/v1/auth/login", json={"email": email, "password": DEMO_PASSWORD}, timeout=10)
    answer.raise_for_status()
    return {"Authorization": "Bearer " + answer.json()["data"]["access_token"]}


def fresh_get(url: str, path: str, headers: dict) -> httpx.Response:
    """A new connection per request: with several workers any of them may answer."""
    with httpx.Client(base_url=url, timeout=10) as client:
        return client.get(path, headers=headers)


def staleness(fleet: Fleet, pairs: int) -> dict[str, Any]:
    """Writes through instance A, reads through instance B: the largest staleness seen, in ms."""
    a, b = fleet.urls[0], fleet.urls[1]
    auth = sign_in(a)
    customers = httpx.get(a + "/api/v1/crm/customers", headers=auth, timeout=10).json()["data"]["items"]
    item = f"/api/v1/crm/customers/{customers[0]['id']}"
    for _ in range(8):  # both of B's workers hold the entry
        fresh_get(b, item, auth)
    worst, stale_reads, hits, held = 0.0, 0, 0, 0
    run = uuid.uuid4().hex[:6]
    with httpx.Client(base_url=a, timeout=10) as writer:
        for i in range(pairs):
            phone = f"+1 555 {run} {i}"
            for _ in range(2):  # B's workers hold the current value before the write
                held += fresh_get(b, item, auth).headers.get("x-cache") == "HIT"
            written = writer.patch(item, headers=auth, json={"phone": phone})
            written.raise_for_status()
            done = time.perf_counter()
            last_stale = None
            while True:
                started = time.perf_counter()
                read = fresh_get(b, item, auth)
                read.raise_for_status()
                if read.json()["data"]["phone"] == phone:
                    hits += read.headers.get("x-cache") == "HIT"
                    break
                last_stale = started
                stale_reads += 1
                if started - done > 5:
                    raise RuntimeError(f"instance B still serves the old value 5 s after the write ({item})")
            if last_stale is not None:
                worst = max(worst, last_stale - done)
    return {"pairs": pairs, "largest_staleness_ms": round(worst * 1000, 2), "stale_reads": stale_reads,
            "reads_before_writes_that_hit": held, "first_fresh_reads_that_hit": hits}


def hammer(fleet: Fleet, seconds: float, threads: int = 8, refusals: int = 50, ceiling: float = 60) -> dict[str, Any]:
    """One user through every instance for `seconds`, and on until `refusals` requests were refused
    (a loaded machine may not spend the burst in `seconds`; `ceiling` bounds the wait): requests
    admitted against what exact GCRA allows."""
    auth = sign_in(fleet.urls[0], "employee@acme.example")
    counts = {"admitted": 0, "refused": 0, "other": 0}
    lock = threading.Lock()
    started = time.perf_counter()
    stop_at, give_up = started + seconds, started + ceiling

    def going() -> bool:
        now = time.perf_counter()
        return now < stop_at or (counts["refused"] < refusals and now < give_up)

    def shoot(url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while going():
                status = client.get("/api/v1/auth/me", headers=auth).status_code
                with lock:
                    counts["admitted" if status == 200 else "refused" if status == 429 else "other"] += 1

    workers = [threading.Thread(target=shoot, args=(fleet.urls[i % len(fleet.urls)],)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.perf_counter() - started
    limit = 600
    allowed = limit + elapsed * limit / 60  # the burst plus what refills meanwhile
    return {**counts, "limit_per_min": limit, "seconds": round(elapsed, 2), "exact_would_admit": int(allowed),
            "overshoot": counts["admitted"] - int(allowed),
            "overshoot_pct_of_limit": round((counts["admitted"] - int(allowed)) / limit * 100, 1)}


def backends(tmp: str):
    env_file = f"{tmp}/backends.env"
    process = subprocess.Popen([*GW, "backends", "--free-ports", "--env-file", env_file],
                               env=clean_env(), stdout=subprocess.DEVNULL)
    return process, wait_for_env_file(env_file, process, 60)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    p = argparse.ArgumentParser(prog="python -m loadtests.bench.fleet", description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=500)
    p.add_argument("--hammer", type=float, default=3.0, help="seconds of hammering one user")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        process, env = backends(tmp)
        try:
            for mode in ("synced", "exact"):
                fleet = Fleet(env, ERP_RATE_LIMITS_POLICIES_USER_LIMIT="600", ERP_RATE_LIMITS_POLICIES_USER_MODE=mode,
                              ERP_REDIS_KEY_PREFIX=f"fleet-{uuid.uuid4().hex[:8]}:")
                try:
                    print(f"overshoot ({mode}):", hammer(fleet, args.hammer), flush=True)
                finally:
                    fleet.close()
            fleet = Fleet(env, ERP_REDIS_KEY_PREFIX=f"fleet-{uuid.uuid4().hex[:8]}:")  # budgets nobody exhausts
            try:
                print("staleness:", staleness(fleet, args.pairs), flush=True)
            finally:
                fleet.close()
        finally:
            stop(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
