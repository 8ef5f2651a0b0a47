"""The WebSocket broadcast bench runs end to end on a few sockets: both servers measured,
every broadcast delivered to every socket. A smoke test only: it asserts no speed or size
(DESIGN.md section 9); the figures are for people (README, "Realtime")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_ws_bench_measures_both_servers(tmp_path: Path) -> None:
    out = tmp_path / "ws.json"
    done = subprocess.run([sys.executable, "-m", "loadtests.bench.ws_broadcast", "--sockets", "40", "--broadcasts", "3",
                           "--gap", "0.05", "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    results = orjson.loads(out.read_bytes())["results"]
    assert set(results) == {"bare", "gateway"}
    for result in results.values():
        assert result["deliveries"] == 40 * 3, result
        assert result["client_errors"] == 0, result
        assert result["rss_kib_after"] > 0 and result["p99_ms"] >= result["p50_ms"] > 0, result
    assert "KiB per socket" in done.stdout
