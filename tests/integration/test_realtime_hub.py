"""The per-worker hub against a real valkey-server: two hubs stand for two workers.

What the WebSocket endpoint and GraphQL subscriptions build on: publish from one worker
reaches the other's local consumers, ACLs, resume with `since`, and a lost feed catching up.
"""

from __future__ import annotations

import asyncio

import pytest
import valkey.asyncio as valkey_asyncio

from emulator.valkey import EmbeddedValkey
from runtime import realtime
from runtime.auth.principal import Principal
from runtime.config import load_config
from runtime.rbac import Policy
from runtime.realtime import ChannelForbidden, Hub
from runtime.realtime.message import order


def principal(user="u-1", org="o-1", roles=("employee",)) -> Principal:
    return Principal(user_id=user, organization_id=org, roles=tuple(roles), email=f"{user}@x", token_id="j",
                     session_id="s", expires_at=2e9, issued_at=0)


@pytest.fixture(scope="module")
def server():
    with EmbeddedValkey() as running:
        yield running


def make_hub(server, **realtime_env) -> Hub:
    env = {f"ERP_REALTIME_{k.upper()}": str(v) for k, v in realtime_env.items()}
    config = load_config(env=env)
    client = valkey_asyncio.Valkey(host=server.host, port=server.port)
    return Hub(client, "test:", config.realtime, Policy(config.rbac.roles))


async def started(*hubs: Hub) -> None:
    for hub in hubs:
        hub.start()
    for hub in hubs:
        await asyncio.wait_for(hub.ready.wait(), 5)


async def next_message(sub, timeout=5.0):
    return await asyncio.wait_for(sub.__anext__(), timeout)


def test_publish_reaches_a_consumer_of_another_worker_and_no_one_else(server):
    async def scenario():
        a, b = make_hub(server), make_hub(server)
        await started(a, b)
        try:
            alice, bob = principal("alice"), principal("bob")
            async with b.listen(alice, ["notifications:alice", "system:broadcast"]) as for_alice, \
                    b.listen(bob, ["notifications:bob"]) as for_bob:
                sent = await a.publish("notifications:alice", {"hello": 1}, sender="carol")
                got = await next_message(for_alice)
                assert got.message_id == sent.message_id
                assert got.as_dict() == {"type": "message", "channel": "notifications:alice", "data": {"hello": 1},
                                         "timestamp": got.timestamp, "user_id": "carol",
                                         "message_id": sent.message_id}
                await a.publish("system:broadcast", {"all": True})
                assert (await next_message(for_alice)).channel == "system:broadcast"
                assert for_bob.get_nowait() is None  # bob got neither
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())


def test_acl_refuses_what_the_principal_does_not_hold(server):
    async def scenario():
        hub = make_hub(server)
        await started(hub)
        try:
            p = principal("alice", "o-1", ("employee",))
            assert hub.can_subscribe(p, "notifications:alice") and not hub.can_subscribe(p, "notifications:bob")
            assert hub.can_subscribe(p, "org:o-1") and not hub.can_subscribe(p, "org:o-2")
            assert hub.can_subscribe(p, "role:employee") and not hub.can_subscribe(p, "role:admin")
            assert not hub.can_subscribe(p, "events:crm.customer.created")  # needs realtime.events:subscribe
            assert hub.can_subscribe(principal(roles=("manager",)), "events:crm.customer.created")
            assert hub.can_subscribe(p, "system:broadcast")
            for bad in ("system:other", "nope:x", "org:", "org:a b", "", "notifications:alice\n"):
                assert not hub.can_subscribe(p, bad), bad
            with pytest.raises(ChannelForbidden):
                hub.listen(p, ["org:o-2"])
            # module-level API: the started hub is this worker's
            assert realtime.hub() is hub and realtime.can_subscribe(p, "org:o-1")
        finally:
            await hub.close()

    asyncio.run(scenario())


def test_role_channels_are_per_organization(server):
    async def scenario():
        hub = make_hub(server)
        await started(hub)
        try:
            acme, globex = principal("a", "acme", ("admin",)), principal("g", "globex", ("admin",))
            async with hub.listen(acme, ["role:admin"]) as at_acme, hub.listen(globex, ["role:admin"]) as at_globex:
                await hub.publish("role:admin", {"x": 1}, organization="acme")
                assert (await next_message(at_acme)).data == {"x": 1}
                await hub.publish("role:admin", {"x": 2}, organization="globex")
                assert (await next_message(at_globex)).data == {"x": 2}
                assert at_acme.get_nowait() is None
        finally:
            await hub.close()

    asyncio.run(scenario())


def test_resume_since_delivers_the_missed_messages_in_order_once(server):
    async def scenario():
        hub = make_hub(server)
        await started(hub)
        try:
            p = principal("resumer", "o-r")
            first = await hub.publish("notifications:resumer", {"n": 0})
            for n in range(1, 6):
                await hub.publish("notifications:resumer" if n % 2 else "org:o-r", {"n": n})
            async with hub.listen(p, ["notifications:resumer", "org:o-r"], since=first.message_id) as sub:
                live = await hub.publish("org:o-r", {"n": 6})
                got = [(await next_message(sub)).data["n"] for _ in range(6)]
                assert got == [1, 2, 3, 4, 5, 6]
                assert sub.get_nowait() is None
                assert live.message_id > first.message_id
        finally:
            await hub.close()

    asyncio.run(scenario())


def test_a_slow_local_consumer_loses_its_oldest_messages_not_others(server):
    async def scenario():
        hub = make_hub(server)
        await started(hub)
        try:
            p = principal("slow")
            async with hub.listen(p, ["notifications:slow"], maxsize=3) as slow:
                for n in range(5):
                    last = await hub.publish("notifications:slow", {"n": n})
                while hub.delivered < 5:
                    await asyncio.sleep(0.01)
                assert slow.dropped == 2
                assert [m.data["n"] for m in (slow.get_nowait(), slow.get_nowait(), slow.get_nowait())] == [2, 3, 4]
                assert last.data == {"n": 4}
        finally:
            await hub.close()

    asyncio.run(scenario())


def test_a_lost_feed_catches_up_from_the_streams(server):
    async def scenario():
        hub, other = make_hub(server), make_hub(server)
        await started(hub, other)
        try:
            p = principal("blip")
            async with hub.listen(p, ["notifications:blip"]) as sub:
                await other.publish("notifications:blip", {"n": 0})
                assert (await next_message(sub)).data == {"n": 0}
                # Kill the hub's subscription connection from the server side.
                admin = valkey_asyncio.Valkey(host=server.host, port=server.port)
                clients = await admin.client_list(_type="pubsub")
                hub.ready.clear()
                for c in clients:
                    await admin.client_kill_filter(_id=c["id"])
                for n in (1, 2, 3):
                    await other.publish("notifications:blip", {"n": n})
                got = [(await next_message(sub, 15)).data["n"] for _ in range(3)]
                assert got == [1, 2, 3]
                await admin.aclose()
        finally:
            await hub.close()
            await other.close()

    asyncio.run(scenario())


def test_delivery_survives_valkey_losing_its_data(server):
    """A Valkey restart without persistence starts the id counter again at 1; ids still order
    by their milliseconds, so nothing published afterwards is mistaken for a duplicate."""
    async def scenario():
        hub = make_hub(server)
        await started(hub)
        admin = valkey_asyncio.Valkey(host=server.host, port=server.port)
        try:
            p = principal("amnesia")
            async with hub.listen(p, ["notifications:amnesia"]) as sub:
                for n in range(3):
                    await hub.publish("notifications:amnesia", {"n": n})
                before = [(await next_message(sub)).message_id for _ in range(3)]
                await admin.flushall()
                after = await hub.publish("notifications:amnesia", {"n": 3})
                assert after.message_id.endswith("-1")  # the counter started again
                assert (await next_message(sub)).message_id == after.message_id
                assert all(after.order > order(m) for m in before)
        finally:
            await admin.aclose()
            await hub.close()

    asyncio.run(scenario())


def test_a_service_account_is_judged_by_its_own_grants(server):
    async def scenario():
        hub = make_hub(server)
        try:
            robot = Principal(user_id="svc-1", organization_id="o-1", roles=(), email="", token_id="j", session_id="",
                              expires_at=2e9, issued_at=0, permissions=("realtime.events:subscribe",))
            assert hub.can_subscribe(robot, "events:invoice.paid")
            assert not hub.can_publish(robot, "org:o-1")
            sender = Principal(user_id="svc-2", organization_id="o-1", roles=("admin",), email="", token_id="j",
                               session_id="", expires_at=2e9, issued_at=0, permissions=("realtime.notifications:send",))
            assert hub.can_publish(sender, "org:o-1") and not hub.can_publish(sender, "system:broadcast")
            assert not hub.can_subscribe(sender, "events:invoice.paid")  # roles do not count for a service
        finally:
            await hub.close()

    asyncio.run(scenario())
