"""`gw serve` as a newcomer runs it: one command, then a frontend's journey over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from emulator.ports import free_port, wait_for_port
from tests.e2e.processes import alive, descendants
from tests.conftest import login
from tests.journey import run_auth_journey
from tests.support import GW, clean_env



def test_gw_serve_journey_and_clean_shutdown():
    port = free_port()
    process = subprocess.Popen(
        [*GW, "serve", "--port", str(port)], env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_for_port("127.0.0.1", port, 60), "gw serve did not open its port"
        banner = ""
        while "valkey" not in banner:  # the banner is printed once everything is up
            line = process.stdout.readline()
            assert line, "gw serve exited before printing its banner"
            banner += line
        banner += "".join(process.stdout.readline() for _ in range(3))
        assert f"http://127.0.0.1:{port}" in banner
        assert "admin@acme.example" in banner

        url = f"http://127.0.0.1:{port}"
        run_auth_journey(lambda: httpx.Client(base_url=url, timeout=10))
        assert httpx.get(url + "/ready", timeout=10).status_code == 200
        # WebSockets are served too, and Ctrl-C closes them with 1001 (going away).
        with httpx.Client(base_url=url, timeout=10) as client:
            bearer = login(client)["access_token"]
        with ws_connect(f"ws://127.0.0.1:{port}/ws", additional_headers={"Authorization": f"Bearer {bearer}"}) as socket:
            assert json.loads(socket.recv(timeout=10))["type"] == "connected"

            children = descendants(process.pid)
            assert len(children) >= 2  # at least valkey-server and granian
            process.send_signal(signal.SIGINT)
            with pytest.raises(ConnectionClosed):
                while True:
                    socket.recv(timeout=30)
            assert socket.close_code == 1001
        assert process.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if alive(pid)], "gw serve left processes behind"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_bad_configuration_stops_start_up_with_one_line():
    result = subprocess.run(
        [*GW, "serve", "--port", str(free_port())],
        env=clean_env(ERP_JWT_CACHE_DURATION="forever"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "jwt.cache_duration" in lines[0] and "forever" in lines[0] and "expected" in lines[0]
