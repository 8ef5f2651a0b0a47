"""The bench runs end to end: every target answers 2xx under load and gets a req/s figure, the
read/write mix counts backend calls, and the profile prints a µs/request figure.

A smoke test only: it asserts no speed (DESIGN.md section 9); the numbers are for people.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from loadtests.bench.targets import BASELINE, TARGETS

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_bench_measures_every_target_without_errors(tmp_path: Path) -> None:
    assert shutil.which("wrk"), "wrk is missing: tests/run installs it (tests/peers/apt.txt)"
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.bench", "--duration", "1", "--rounds", "1", "--connections", "4",
         "--mix-requests", "200", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = orjson.loads(out.read_bytes())
    results = report["targets"]
    assert {"health", "me", "customer"} <= {t.name for t in TARGETS}
    for target in (BASELINE, *TARGETS):
        assert target.name in results, f"{target.name} missing from {sorted(results)}"
        result = results[target.name]
        assert result["rps"] > 0, result
        assert result["non_2xx"] == 0, result
        assert result["errors"] == 0, result

    mix = report["mix"]
    assert mix["requests"] == 200 == mix["gets"] + mix["patches"], mix
    assert 0.8 <= mix["hit_rate"] < 1, mix  # 4 misses per PATCH, then hits
    assert 0 < mix["get_customer_per_get"] < 0.2, mix
    assert mix["calls"]["crm /erp.crm.v1.CrmService/UpdateCustomer"] == mix["patches"], mix


def test_report_runs_every_comparison_and_writes_markdown_and_a_chart(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.bench.report", "--workers", "1", "--duration", "1", "--rounds", "1",
         "--connections", "4", "--out", str(tmp_path), "--ws-sockets", "50", "--ws-broadcasts", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "REPORT.md").read_text()
    for target in (BASELINE, *TARGETS):
        assert f"| {target.name} | {target.server} |" in report
    # Each gateway read that has a FastAPI twin gets the ratio between the two.
    assert re.search(r"^\| me \| gateway \|.*\| [\d.]+x \|$", report, re.M), report
    assert re.search(r"^\| gateway \| 50 \|", report, re.M), report  # the WebSocket comparison ran
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_prints_cpu_per_request() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.bench.profile", "--requests", "200", "--target", "customer", "--top", "5"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = dict(re.findall(r"^  (\w+) +([\d.]+)", done.stdout.split("µs of CPU per request")[-1], re.M))
    assert set(figures) == {"hello", "customer"}, done.stdout[-3000:]
    assert all(float(us) > 0 for us in figures.values()), figures
    assert "runtime/pipeline.py" in done.stdout  # the gateway's own code shows in the profile


def test_valkey_client_bench_measures_standalone_and_cluster() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.bench.valkey_clients", "--calls", "500", "--rounds", "1", "--no-valkey-py"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {m.group(1).strip(): (float(m.group(2)), float(m.group(3)))
            for m in re.finditer(r"^  (\S.*?)\s+([\d.]+)\s+([\d.]+)$", done.stdout, re.M)}
    assert set(rows) == {"ValkeyMux (standalone)", "ClusterMux (3 primaries)"}, done.stdout
    assert all(get > 0 and evalsha > 0 for get, evalsha in rows.values()), rows
