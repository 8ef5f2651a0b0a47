"""The request path's multiplexed Valkey client against a real valkey-server."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time

import pytest
import uvloop
import valkey.asyncio as valkey_asyncio
from valkey import exceptions as errors

from emulator.ports import free_port
from emulator.valkey import EmbeddedValkey
from runtime.valkey_mux import CircuitOpenError, ValkeyMux, _Connection, pack


@pytest.fixture(scope="module")
def server():
    with EmbeddedValkey() as running:
        yield running


@pytest.fixture
def own_server():
    """A server this test may stop, restart or freeze."""
    running = EmbeddedValkey().start()
    yield running
    if running.process is not None:
        os.kill(running.process.pid, signal.SIGCONT)
    running.stop()


_keys = itertools.count()


def key(name: str = "k") -> str:
    return f"test:mux:{name}:{next(_keys)}"


def run(make_client, test):
    """Each test on its own uvloop (as in the gateway's workers), with a client made on it."""

    async def go():
        client = make_client()
        try:
            return await test(client)
        finally:
            await client.aclose()

    return uvloop.run(go())


async def until_pending(c: ValkeyMux, n: int, timeout: float = 10) -> None:
    """Until `c` has `n` commands sent and unanswered (what a sleep used to assume)."""
    deadline = time.monotonic() + timeout
    while sum(len(s.conn.pending) for s in c._slots if s.conn is not None) < n:
        assert time.monotonic() < deadline, f"{n} commands never went out"
        await asyncio.sleep(0.001)


def connect(server, **kwargs) -> ValkeyMux:
    return ValkeyMux(server.host, server.port, **kwargs)


# ------------------------------------------------------------------ replies


def test_every_reply_type_comes_back_as_valkey_py_returns_it(server):
    k, counter, binary = key(), key(), b"a\r\nb\x00\xff$3\r\n"

    async def test(c):
        await c.set(k, binary)
        return [
            await c.ping(),                                  # + simple string
            await c.execute("ECHO", "hi"),                   # $ bulk string
            await c.get(k),                                  # bulk with CRLF inside
            await c.get(key("missing")),                     # $-1 nil
            await c.incr(counter, -5),                       # : negative integer
            await c.mget(k, key("missing")),                 # * array with nil
            await c.execute("KEYS", "test:mux:nothing:*"),   # *0 empty array
            await c.execute("BLPOP", key("empty"), "0.01"),  # *-1 nil array
            await c.execute("EVAL", "return {1, {2, 'x', {}}, 'y'}", 0),  # nested
        ]

    assert run(lambda: connect(server), test) == [
        True, b"hi", binary, None, -5, [binary, None], [], None, [1, [2, b"x", []], b"y"],
    ]


def test_error_replies_raise_valkey_py_exceptions(server):
    k = key()

    async def test(c):
        await c.set(k, "not a number")
        raised = []
        for call in (c.incr(k), c.execute("NO-SUCH-COMMAND"), c.evalsha(c.register_script("return 1 +"))):
            try:
                await call
            except errors.ResponseError as exc:
                raised.append(type(exc))
        nested = await c.execute("EVAL", "return {1, redis.error_reply('boom')}", 0)
        return raised, nested, await c.ping()

    raised, nested, still_up = run(lambda: connect(server), test)
    assert raised == [errors.ResponseError] * 3
    # Inside an array an error is a value, as valkey-py returns it; the connection stays usable.
    assert nested[0] == 1 and isinstance(nested[1], errors.ResponseError) and "boom" in str(nested[1])
    assert still_up is True


def test_replies_split_at_every_byte_are_parsed_incrementally():
    class Transport:
        def write(self, data):
            pass

    loop = asyncio.new_event_loop()
    try:
        conn = _Connection(loop, timeout=60, max_pending=10)
        conn.transport = Transport()
        futures = conn.send(b"", replies=4)
        stream = b"$5\r\nhello\r\n*3\r\n:1\r\n*1\r\n$-1\r\n+OK\r\n-ERR bad\r\n:42\r\n"
        for i in range(len(stream)):
            conn.data_received(stream[i:i + 1])
        assert futures[0].result() == b"hello"
        assert futures[1].result() == [1, [None], b"OK"]
        assert isinstance(futures[2].exception(), errors.ResponseError)
        assert futures[3].result() == 42
        assert not conn.pending and conn.error is None
    finally:
        loop.close()


def test_pack_follows_valkey_py_argument_rules():
    assert pack(("SET", b"k", 1, 2.5)) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n$3\r\n2.5\r\n"
    for bad in (True, None, object()):
        with pytest.raises(errors.DataError):
            pack(("SET", "k", bad))


def test_large_values_round_trip_between_small_ones(server):
    big, other = os.urandom(1 << 20), os.urandom((1 << 20) + 7)
    k1, k2, small = key(), key(), key()

    async def test(c):
        await asyncio.gather(c.set(k1, big), c.set(k2, other), c.set(small, b"s"))
        return await asyncio.gather(c.get(k1), c.get(small), c.mget(k1, k2), c.get(small))

    got_big, got_small, both, again = run(lambda: connect(server), test)
    assert got_big == big and both == [big, other]
    assert got_small == again == b"s"


# ------------------------------------------------------------------ multiplexing


def test_1000_concurrent_calls_on_one_connection_each_get_their_own_reply(server):
    prefix = key("many")

    async def one(c, i):
        await c.set(f"{prefix}:{i}", f"value-{i}")
        return await c.get(f"{prefix}:{i}"), await c.incr(f"{prefix}:n:{i}", i)

    async def test(c):
        before = await c.execute("CLIENT", "ID")
        answers = await asyncio.gather(*(one(c, i) for i in range(1000)))
        return answers, before, await c.execute("CLIENT", "ID")

    answers, before, after = run(lambda: connect(server), test)
    assert answers == [(f"value-{i}".encode(), i) for i in range(1000)]
    assert before == after  # all of it on the same connection


def test_execute_many_answers_in_order_and_raises_the_first_error(server):
    k = key()

    async def test(c):
        replies = await c.execute_many([("SET", k, "1"), ("INCR", k), ("GET", k)])
        with pytest.raises(errors.ResponseError):
            await c.execute_many([("SET", k, "x"), ("INCR", k), ("GET", k)])
        return replies, await c.get(k)

    replies, after = run(lambda: connect(server), test)
    assert replies == [b"OK", 2, b"2"]
    assert after == b"x"  # not a transaction: the commands around the error ran


def test_pending_cap_fails_fast_instead_of_queueing(server):
    k = key()

    async def test(c):
        await c.ping()
        blocked = [asyncio.ensure_future(c.execute("BLPOP", k, "5")) for _ in range(3)]
        await until_pending(c, 3)  # all three sent, none answered
        with pytest.raises(errors.ConnectionError, match="Too many pending"):
            await c.get(k)
        other = connect(server)
        try:
            await other.execute("RPUSH", k, "a", "b", "c")
        finally:
            await other.aclose()
        return sorted(v for _, v in await asyncio.gather(*blocked))

    assert run(lambda: connect(server, max_pending=3), test) == [b"a", b"b", b"c"]


# ------------------------------------------------------------------ scripts


def test_script_survives_script_flush(server):
    async def test(c):
        echo = c.register_script("return ARGV[1] .. redis.call('GET', KEYS[1])")
        k = key()
        await c.set(k, "!")
        first = await echo(keys=[k], args=["a"])
        await c.execute("SCRIPT", "FLUSH")
        assert await c.execute("SCRIPT", "EXISTS", echo.sha) == [0]
        second = await echo(keys=[k], args=["b"])
        return first, second, await c.execute("SCRIPT", "EXISTS", echo.sha)

    assert run(lambda: connect(server), test) == (b"a!", b"b!", [1])


# ------------------------------------------------------------------ failures


async def until_up(c: ValkeyMux, timeout: float = 5) -> int:
    """Ping until the breaker lets a call through and it succeeds; the calls refused meanwhile."""
    deadline, refused = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        try:
            if await c.ping():
                return refused
        except errors.ConnectionError:
            refused += 1
        await asyncio.sleep(0.01)
    raise AssertionError("the client never came back")


def test_server_restart_fails_pending_calls_and_a_later_call_reconnects(own_server):
    async def test(c):
        await c.ping()
        pending = [asyncio.ensure_future(c.execute("BLPOP", key(), "0")) for _ in range(5)]
        await until_pending(c, 5)
        own_server.stop()
        results = await asyncio.gather(*pending, return_exceptions=True)
        own_server.start()
        await until_up(c)
        return results, await c.ping()

    results, up = run(lambda: connect(own_server, timeout=5, cooldown=0.1), test)
    assert [type(r) for r in results] == [errors.ConnectionError] * 5
    assert up is True


def test_a_refused_connect_opens_the_breaker_then_its_own_probe_closes_it(own_server):
    port = own_server.port
    own_server.stop()

    async def test(c):
        with pytest.raises(errors.ConnectionError, match="Error connecting"):
            await c.ping()
        own_server.start()
        with pytest.raises(CircuitOpenError, match="circuit open"):
            await c.ping()  # within the cool-down: no new attempt, though the server is back
        assert c.breaker.state == "open"
        for _ in range(100):  # no calls meanwhile: the breaker probes by itself after the cool-down
            await asyncio.sleep(0.02)
            if c.breaker.state == "closed":
                break
        return c.breaker.state, await c.ping()

    state, up = run(lambda: ValkeyMux(own_server.host, port, cooldown=0.25), test)
    assert state == "closed" and up is True


def test_a_hung_server_costs_one_timeout_then_calls_fail_fast_until_it_answers(own_server):
    """SIGSTOP: the server accepts connections but never answers. The first calls wait out the
    timeout; after that every call fails at once while the breaker probes in the background."""
    pid = own_server.process.pid

    async def test(c):
        await c.ping()
        os.kill(pid, signal.SIGSTOP)
        try:
            first = await asyncio.gather(*(c.get(key()) for _ in range(10)), return_exceptions=True)
            slowest, refused, until = 0.0, 0, time.monotonic() + 1.5  # several cool-downs and probes
            while time.monotonic() < until:
                started = time.monotonic()
                with pytest.raises(errors.ConnectionError):
                    await c.get(key())
                slowest = max(slowest, time.monotonic() - started)
                refused += 1
                await asyncio.sleep(0.005)
            opened = c.breaker.opened
        finally:
            os.kill(pid, signal.SIGCONT)
        started = time.monotonic()
        await until_up(c)
        return first, slowest, refused, opened, time.monotonic() - started

    first, slowest, _refused, opened, back_after = run(lambda: connect(own_server, timeout=0.2, cooldown=0.2), test)
    assert [type(r) for r in first] == [errors.TimeoutError] * 10
    assert slowest < 0.05, slowest  # failing fast: no call waits for the hung server
    assert opened >= 3  # every probe timed out and opened it again
    assert back_after < 2


def test_a_hung_server_times_out_within_the_timeout_and_recovers(own_server):
    pid = own_server.process.pid

    async def test(c):
        await c.ping()
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        try:
            results = await asyncio.gather(*(c.get(key()) for _ in range(10)), return_exceptions=True)
            elapsed = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        await until_up(c)
        return results, elapsed, await c.ping()

    results, elapsed, up = run(lambda: connect(own_server, timeout=0.4, cooldown=0.1), test)
    assert [type(r) for r in results] == [errors.TimeoutError] * 10
    # Not before the timeout; that they returned at all while the server stayed stopped is the
    # watchdog's doing (no upper bound on a busy machine: pytest's timeout catches a hang).
    assert 0.4 <= elapsed
    assert up is True


def test_close_fails_pending_calls_and_refuses_new_ones(server):
    async def test():
        c = connect(server)
        await c.ping()
        pending = asyncio.ensure_future(c.execute("BLPOP", key(), "0"))
        await until_pending(c, 1)
        await c.aclose()
        with pytest.raises(errors.ConnectionError, match="closed"):
            await c.ping()
        return await asyncio.gather(pending, return_exceptions=True)

    [result] = uvloop.run(test())
    assert isinstance(result, errors.ConnectionError)


def test_unreachable_server_raises_connection_error_not_a_timeout():
    async def test(c):
        with pytest.raises(errors.ConnectionError) as refused:
            await c.get("k")
        return refused.value

    # Refused at once: a ConnectionError, not the TimeoutError of waiting out redis.timeout.
    error = run(lambda: ValkeyMux("127.0.0.1", free_port("127.0.0.1"), timeout=30), test)
    assert not isinstance(error, errors.TimeoutError) and "Error connecting" in str(error)


# ------------------------------------------------------------------ AUTH and SELECT


def test_password_and_database_are_set_on_connect():
    with EmbeddedValkey(args=("--requirepass", "s3cret")) as protected:
        k = key()

        async def test(c):
            await c.set(k, "in db 3")
            check = valkey_asyncio.Valkey(host=protected.host, port=protected.port, password="s3cret", db=3)
            try:
                seen = await check.get(k)
            finally:
                await check.aclose()
            return await c.ping(), seen

        assert run(lambda: connect(protected, password="s3cret", db=3), test) == (True, b"in db 3")

        async def refused(c):
            with pytest.raises(errors.AuthenticationError) as raised:
                await c.ping()
            return raised.value

        # No password: the server answers NOAUTH; a wrong one fails the connect itself.
        assert "Authentication required" in str(run(lambda: connect(protected), refused))
        assert "invalid username-password" in str(run(lambda: connect(protected, password="wrong"), refused))
