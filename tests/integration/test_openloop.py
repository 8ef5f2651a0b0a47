"""The open-loop generator behind the report's half-load figures keeps its schedule and counts
a server's stall in full (no coordinated omission), against a small HTTP server that stops
answering for a moment. No speed is asserted: the stall only makes latencies longer, so the
lower bounds below hold however busy the machine is."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from emulator.ports import free_port
from loadtests.bench import openloop

STALL_AFTER, STALL = 1.0, 0.4  # seconds after the first request; how long nothing is answered


@pytest.fixture
def stalling_server() -> Iterator[str]:
    """HTTP/1.1 keep-alive server answering 200 at once, except during one stall window."""
    port = free_port("127.0.0.1")
    loop = asyncio.new_event_loop()
    first: list[float] = []
    started = threading.Event()
    stop = loop.create_future()
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                now = time.monotonic()
                if not first:
                    first.append(now)
                stall_from = first[0] + STALL_AFTER
                if stall_from <= now < stall_from + STALL:
                    await asyncio.sleep(stall_from + STALL - now)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
        finally:
            writers.discard(writer)

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        started.set()
        async with server:
            await stop
            for writer in list(writers):
                writer.close()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert started.wait(10)
    yield f"http://127.0.0.1:{port}/"
    loop.call_soon_threadsafe(stop.set_result, None)
    thread.join(10)
    loop.close()


def test_a_stall_shows_in_full_and_every_due_request_is_counted(stalling_server: str) -> None:
    rate, duration = 200, 2.5
    run = openloop.run(stalling_server, rate=rate, duration=duration, warmup=0.5, connections=4, processes=1)
    assert run.non_2xx == 0 and run.errors == 0, run
    # Every request due in the measured window was sent and answered: the schedule is open loop.
    assert abs(run.requests - rate * duration) <= 1, run
    # The stall holds ~STALL * rate = 80 requests of 500 (16%). Counted from their due time, they
    # take up to STALL each, so the slowest 10% take at least a quarter of it. A closed-loop count
    # (from send) would see only the 4 requests on the wire when it began: under 1%, p90 ~1 ms.
    assert run.max_ms >= 0.9 * STALL * 1000, run
    assert run.p90_ms >= 0.25 * STALL * 1000, run
    # With 4 connections held by the stall, later requests waited for one and were counted so.
    assert run.queued > 0, run


def test_two_processes_share_the_schedule(stalling_server: str) -> None:
    run = openloop.run(stalling_server, rate=300, duration=1.0, warmup=0.2, connections=4, processes=2)
    assert run.processes == 2
    assert abs(run.requests - 300) <= 2, run
    assert run.non_2xx == 0 and run.errors == 0, run


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="rate and duration"):
        openloop.run("http://127.0.0.1:1/", rate=0, duration=1)
    with pytest.raises(ValueError, match="only http://"):
        openloop.build_request("https://example.invalid/")
