"""GraphiQL in a real headless Chromium (Debian's `chromium`, tests/peers/apt.txt): the page
and its scripts come from the gateway alone (the browser has no network), and running
`{ me { email } }` with a token in the Headers tab shows the signed-in user's email.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from emulator.processes import spawn, stop
from tests.conftest import login
from tests.support import granian_env, start_gateway

JS = Path(__file__).resolve().parents[2] / "clients" / "js"
BROWSER_HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_graphiql_is_off_by_default(gateway):
    answer = httpx.get(gateway.url + "/graphql", headers={"Accept": BROWSER_HTML})
    assert not answer.headers["content-type"].startswith("text/html")
    assert httpx.get(gateway.url + "/graphql/assets/graphiql.min.js").status_code == 404


def _devtools_port(profile: Path, browser: subprocess.Popen, timeout: float = 30) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text().strip():
            return int(marker.read_text().split()[0])
        assert browser.poll() is None, "chromium exited"
        time.sleep(0.1)
    raise AssertionError("chromium did not open its DevTools port")


def test_graphiql_runs_me_in_headless_chromium(stack, tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: tests/run installs it (tests/peers/apt.txt)"
    process, url = start_gateway(granian_env(stack.environment(), ERP_GRAPHQL_GRAPHIQL="true"))
    browser = None
    try:
        page = httpx.get(url + "/graphql", headers={"Accept": BROWSER_HTML})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "http" not in page.text  # every script and style from this gateway, no CDN
        for asset in ("graphiql.min.js", "graphiql.min.css", "react.production.min.js", "react-dom.production.min.js"):
            served = httpx.get(f"{url}/graphql/assets/{asset}")
            assert served.status_code == 200 and len(served.content) > 1000, asset
        with httpx.Client(base_url=url) as client:
            token = login(client)["access_token"]
        profile = tmp_path / "profile"
        browser = spawn([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update",
                         "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = _devtools_port(profile, browser)
        run = subprocess.run(["node", str(JS / "graphiql_me.mjs"), str(port), url, token],
                             capture_output=True, text=True, timeout=90)
        assert run.returncode == 0, run.stderr[-3000:]
        assert '"email": "admin@acme.example"' in run.stdout, run.stdout
    finally:
        stop(browser)
        stop(process)
