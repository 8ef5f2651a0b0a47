"""Another tenant's latency while one tenant reads huge list pages (issue 10, item 5).

    python -m loadtests.bench.huge_pages [--seconds 20] [--readers 8] [--phases unbounded,bounded] [--env K=V]

One tenant (a fresh sign-up, admin of its own organization) fills its invoices with the
largest records the backend accepts (100 lines of 500 characters) and has `--readers`
clients read its invoice list as fast as they can; meanwhile another organization's admin
reads one customer (a cached read: rate limit and cache in one Valkey round trip) in a loop.
Two phases, each on a fresh 2-worker gateway against the same backends:

- `unbounded`: `limits.max_response_bytes` and the rate limits lifted, so pages of 100 invoices (~6 MB encoded,
  ~8 MB of JSON) are served and cached (before this limit existed);
- `bounded`: the shipped page limit: a page over 2 MiB is refused with 400, so the reader
  falls back to the largest page it may have (page_size 30); rate limits still lifted;
- `shipped`: every shipped limit, the per-user budget (600/min) included.

The other tenant reads five times a second (within its own budget).

Prints the other tenant's p50/p90/p99/max per phase, idle and under the reads.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid

import httpx

from loadtests.bench.servers import GATEWAY_ENV, Processes, _clean_env, start_backends, start_granian

DEMO_PASSWORD = "demo-pass-123"  # the emulator's development password
PACE = 0.2  # the other tenant's think time: 5 reads a second, within the shipped user budget (600/min)


def sign_up(base: str) -> str:
    tag = uuid.uuid4().hex[:10]
    answer = httpx.post(base + "/api/v1/auth/register", timeout=30, json={
        "first_name": "Big", "last_name": "Pages", "email": f"big-{tag}@pages-{tag}.example",
        "password": "long-enough-1", "password_confirmation": "long-enough-1",
        "organization_name": f"Pages {tag}", "domain": f"pages-{tag}.example"})
    answer.raise_for_status()
    return answer.json()["data"]["access_token"]


def fill(client: httpx.Client, invoices: int) -> None:
    customer = client.post("/api/v1/crm/customers", json={"name": "Buyer"}).json()["data"]["id"]
    line = {"description": "d" * 500, "quantity": "1", "unit_price": {"amount": "1.00", "currency": "EUR"}}
    for _ in range(invoices):
        answer = client.post("/api/v1/finance/invoices", json={
            "customer_id": customer, "number": f"INV-{uuid.uuid4().hex[:10]}", "lines": [line] * 100})
        answer.raise_for_status()


def reader(base: str, token: str, stop: threading.Event, counts: dict) -> None:
    page_size = 100
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        while not stop.is_set():
            answer = client.get("/api/v1/finance/invoices", params={"page_size": page_size})
            if answer.status_code == 400 and "page_size" in answer.json().get("errors", {}):
                page_size = 30  # the largest page under the shipped 2 MiB limit
                continue
            if answer.status_code == 429:  # the user budget: wait as told
                counts["limited"] += 1
                stop.wait(float(answer.headers.get("Retry-After", "1")))
                continue
            counts["pages"] += 1
            counts["bytes"] += len(answer.content)


def victim(base: str, token: str, customer: str, seconds: float) -> list[float]:
    took = []
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            assert client.get(f"/api/v1/crm/customers/{customer}").status_code == 200
            took.append(time.monotonic() - started)
            time.sleep(PACE)
    return took


def summary(took: list[float]) -> str:
    q = statistics.quantiles(took, n=100, method="inclusive")
    return (f"n={len(took):5d}  p50={q[49] * 1000:7.1f} ms  p90={q[89] * 1000:7.1f} ms  "
            f"p99={q[98] * 1000:7.1f} ms  max={max(took) * 1000:7.1f} ms")


def phase(name: str, backends: dict[str, str], processes: Processes, args: argparse.Namespace) -> None:
    env = {**backends, **GATEWAY_ENV, "ERP_LIMITS_MAX_IN_FLIGHT_PER_ADDRESS": "100000",
           "ERP_RATE_LIMITS_POLICIES_REGISTER_LIMIT": "1000", "ERP_RATE_LIMITS_POLICIES_REGISTER_DOMAIN_LIMIT": "1000"}
    if name == "shipped":  # every shipped limit, the user budget (600/min) included
        env = {**backends, "ERP_LOGGING_LEVEL": "warning"}
    if name == "unbounded":
        env["ERP_LIMITS_MAX_RESPONSE_BYTES"] = str(1 << 30)
    env.update(args.env)
    base = start_granian(processes, f"gateway-{name}", 2, _clean_env(**env), ready_path="/health")
    big = sign_up(base)
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {big}"}) as client:
        fill(client, args.invoices)
    signed_in = httpx.post(base + "/api/v1/auth/login", timeout=30,
                           json={"email": "admin@globex.example", "password": DEMO_PASSWORD}).json()["data"]
    other = signed_in["access_token"]
    customers = httpx.get(base + "/api/v1/crm/customers", headers={"Authorization": f"Bearer {other}"}).json()
    customer = customers["data"]["items"][0]["id"]
    idle = victim(base, other, customer, 5)
    stop, counts = threading.Event(), {"pages": 0, "bytes": 0, "limited": 0}
    threads = [threading.Thread(target=reader, args=(base, big, stop, counts)) for _ in range(args.readers)]
    for t in threads:
        t.start()
    time.sleep(1)
    loaded = victim(base, other, customer, args.seconds)
    stop.set()
    for t in threads:
        t.join()
    mb = counts["bytes"] / 1e6
    print(f"{name:9}  idle:        {summary(idle)}")
    print(f"{name:9}  under reads: {summary(loaded)}   ({counts['pages']} pages, {mb:.0f} MB read, "
          f"{mb / max(counts['pages'], 1):.1f} MB a page, {counts['limited']} 429s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--invoices", type=int, default=100)
    parser.add_argument("--phases", default="unbounded,bounded,shipped",
                        help="comma separated: unbounded, bounded, shipped")
    parser.add_argument("--env", action="append", default=[], metavar="ERP_KEY=VALUE",
                        help="extra gateway setting for every phase, e.g. ERP_CACHE_ENABLED=false")
    args = parser.parse_args()
    args.env = dict(item.split("=", 1) for item in args.env)
    with Processes() as processes:
        backends = start_backends(processes)
        for name in args.phases.split(","):
            phase(name, backends, processes, args)


if __name__ == "__main__":
    main()
