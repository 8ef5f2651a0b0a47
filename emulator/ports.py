"""Free loopback ports for local runs and tests."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def wait_for_http(url: str, process: subprocess.Popen, timeout: float, context: ssl.SSLContext | None = None) -> bool:
    """Until GET `url` answers 2xx, while `process` lives. Granian opens its port before its
    workers have run their lifespan start-up, so an open port is not a ready app. `context`
    verifies an https URL."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as answer:
                if 200 <= answer.status < 300:
                    return True
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.05)
    return False
