"""A real browser (Debian's headless Chromium) on the WebSocket: a page served by this test
opens /ws, authenticates with its first message (browsers cannot set headers on a WebSocket),
and shows a notification published through the REST endpoint.

The page reports what it sees back to the test's own HTTP server (same origin as the page),
so the test needs no browser-automation library; the gateway checks the page's Origin.
"""

from __future__ import annotations

import http.server
import json
import queue
import shutil
import subprocess
import tempfile
import threading

import httpx
import pytest

from emulator.ports import free_port
from emulator.processes import spawn, stop
from tests.conftest import login
from tests.support import granian_env, start_gateway

pytestmark = pytest.mark.slow

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>notifications</title></head>
<body><ul id="notifications"></ul>
<script>
const settings = %(settings)s;
function report(kind, detail) {
  return fetch("/report", {method: "POST", body: JSON.stringify({kind: kind, detail: detail})});
}
const socket = new WebSocket(settings.ws);
socket.onopen = () => socket.send(JSON.stringify({type: "auth", token: settings.token}));
socket.onmessage = (event) => {
  const frame = JSON.parse(event.data);
  if (frame.type === "ping") { socket.send(JSON.stringify({type: "pong"})); return; }
  if (frame.type === "connected") { report("connected", frame); return; }
  if (frame.type === "message") {
    const item = document.createElement("li");
    item.textContent = frame.data.title;            // shown on the page
    document.getElementById("notifications").appendChild(item);
    report("shown", {frame: frame, page: document.getElementById("notifications").innerText});
  }
};
socket.onclose = (event) => report("closed", {code: event.code, reason: event.reason});
</script></body></html>
"""


class PageServer(http.server.ThreadingHTTPServer):
    def __init__(self, settings: dict) -> None:
        self.settings = settings
        self.reports: queue.Queue = queue.Queue()
        super().__init__(("127.0.0.1", free_port()), PageHandler)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (PAGE % {"settings": json.dumps(self.server.settings)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.reports.put(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def next_report(server: PageServer, kind: str, timeout: float = 60) -> dict:
    while True:
        report = server.reports.get(timeout=timeout)
        if report["kind"] == kind:
            return report["detail"]
        assert report["kind"] != "closed", f"the page's socket closed: {report}"


def test_chromium_page_authenticates_by_first_message_and_shows_a_notification(stack):
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed (tests/peers/apt.txt lists it; run bash tests/run)"
    settings: dict = {}
    page = PageServer(settings)
    threading.Thread(target=page.serve_forever, daemon=True).start()
    env = granian_env(stack.environment(), ERP_REALTIME_ALLOWED_ORIGINS=page.origin)
    gateway, url = start_gateway(env, workers=1)
    browser = None
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            viewer = login(client, "viewer@acme.example")
            admin = login(client, "admin@acme.example")
        settings.update(ws=url.replace("http://", "ws://") + "/ws", token=viewer["access_token"])
        # Chromium's helper processes may still write the profile as it exits.
        with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
            browser = spawn([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update",
                             "--remote-debugging-port=0", f"--user-data-dir={profile}", page.origin + "/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            connected = next_report(page, "connected")
            assert connected["user_id"] == viewer["user"]["id"]
            with httpx.Client(base_url=url, timeout=10) as client:
                answer = client.post("/api/v1/notifications",
                                     json={"channel": f"notifications:{viewer['user']['id']}",
                                           "data": {"title": "Invoice INV-7 was paid"}},
                                     headers={"Authorization": f"Bearer {admin['access_token']}"})
            assert answer.status_code == 202, answer.text
            shown = next_report(page, "shown")
            assert shown["page"] == "Invoice INV-7 was paid"
            assert shown["frame"]["message_id"] == answer.json()["data"]["message_id"]
            assert shown["frame"]["user_id"] == admin["user"]["id"]
            stop(browser)
    finally:
        stop(browser)
        stop(gateway)
        page.shutdown()
