"""`redis.max_retries` against a real valkey-server and a real Valkey Cluster: the gateway's
valkey-py client (the revocation feed's and the health check's) sends a command again after a
timeout, with backoff (standalone) or after refreshing the slot map (cluster).

`CLIENT PAUSE` holds every command for longer than `redis.timeout`, so the first attempt
times out whatever the machine's speed; with retries the command goes through once the pause
ends, without them it fails.
"""

from __future__ import annotations

import asyncio

import pytest
import valkey
from valkey.exceptions import TimeoutError as ValkeyTimeout

from emulator.valkey import EmbeddedCluster, EmbeddedValkey
from runtime.config import load_config
from runtime.resources import Resources

PAUSE_MS = 2000
TIMEOUT = "200ms"


@pytest.fixture(scope="module")
def server():
    with EmbeddedValkey() as running:
        yield running


async def get_during_a_pause(server: EmbeddedValkey, max_retries: int, **env: str) -> object:
    config = load_config(env={"ERP_REDIS_HOST": server.host, "ERP_REDIS_PORT": str(server.port),
                              "ERP_REDIS_TIMEOUT": TIMEOUT, "ERP_REDIS_MAX_RETRIES": str(max_retries), **env})
    client = Resources(config).valkey  # the client the gateway builds, nothing else started
    admin = valkey.Valkey(host=server.host, port=server.port)
    try:
        await client.set("retried", "yes")
        admin.execute_command("CLIENT", "PAUSE", PAUSE_MS, "ALL")
        return await client.get("retried")
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        admin.close()
        await client.aclose()


def test_a_command_that_times_out_is_retried_until_valkey_answers(server):
    # 200 ms timeouts, backoff 0.1, 0.2, 0.2 s...: 20 attempts outlast the 2 s pause.
    assert asyncio.run(get_during_a_pause(server, max_retries=20)) == b"yes"


def test_without_retries_the_first_timeout_is_the_answer(server):
    with pytest.raises(ValkeyTimeout):
        asyncio.run(get_during_a_pause(server, max_retries=0))


@pytest.fixture(scope="module")
def cluster():
    with EmbeddedCluster(primaries=3, replicas=0) as running:
        yield running


def owner_of(cluster: EmbeddedCluster, key: str) -> EmbeddedValkey:
    """The primary serving `key`'s slot: the one to pause."""
    client = cluster.client(cluster.nodes[0])
    slot = client.execute_command("CLUSTER", "KEYSLOT", key)
    for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
        if start <= slot <= end:
            return next(n for n in cluster.nodes if n.port == primary[1])
    raise AssertionError(f"no owner for slot {slot}")


def test_in_a_cluster_a_command_that_times_out_is_retried_until_valkey_answers(cluster):
    # ValkeyCluster's own retries (valkey-py's default is 3: 4 attempts of 200 ms, under the
    # 2 s pause); 20 attempts outlast it.
    node = owner_of(cluster, "retried")
    assert asyncio.run(get_during_a_pause(node, max_retries=20, **cluster.environment())) == b"yes"


def test_in_a_cluster_without_retries_the_first_timeout_is_the_answer(cluster):
    node = owner_of(cluster, "retried")
    with pytest.raises(ValkeyTimeout):
        asyncio.run(get_during_a_pause(node, max_retries=0, **cluster.environment()))
