"""A slow-body attacker, as a process of its own: `python -m tests.slow_body_attacker PORT N SECONDS`.

Keeps N connections to 127.0.0.1:PORT that each send a complete login request head with a
1,000-byte Content-Length and then trickle the body one byte every few seconds. A connection
the server answers or closes is opened again after a short pause, so the pressure stays on
for SECONDS. Prints one JSON line: connections opened, the most open at once, and the status
lines the server answered with.
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
import time

HEAD = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n")
TRICKLE_EVERY = 3.0  # seconds between body bytes
REOPEN_AFTER = 2.0  # pause before a closed connection is opened again


class Stats:
    def __init__(self) -> None:
        self.opened = 0
        self.open_now = 0
        self.peak = 0
        self.statuses: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()


async def one(port: int, until: float, stats: Stats) -> None:
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            stats.errors[type(exc).__name__] += 1
            await asyncio.sleep(REOPEN_AFTER)
            continue
        stats.opened += 1
        stats.open_now += 1
        stats.peak = max(stats.peak, stats.open_now)
        try:
            writer.write(HEAD)
            await writer.drain()
            while time.monotonic() < until:
                try:
                    line = await asyncio.wait_for(reader.readline(), TRICKLE_EVERY)
                except asyncio.TimeoutError:
                    writer.write(b" ")  # one more byte of a body that never ends
                    await writer.drain()
                    continue
                stats.statuses[line.decode(errors="replace").strip() or "closed"] += 1
                break
        except OSError as exc:
            stats.errors[type(exc).__name__] += 1
        finally:
            stats.open_now -= 1
            writer.close()
        await asyncio.sleep(REOPEN_AFTER)


async def main(port: int, connections: int, seconds: float) -> None:
    stats = Stats()
    until = time.monotonic() + seconds
    tasks = []
    for _ in range(connections):  # ramp up quickly but not in one burst of SYNs
        tasks.append(asyncio.create_task(one(port, until, stats)))
        await asyncio.sleep(0.001)
    print(json.dumps({"ready": True}), flush=True)
    await asyncio.gather(*tasks)
    print(json.dumps({"opened": stats.opened, "peak_open": stats.peak, "statuses": stats.statuses,
                      "errors": stats.errors}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
