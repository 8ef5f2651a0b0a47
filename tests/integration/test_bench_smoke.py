"""The bench runs end to end: every target answers 2xx under load and gets a req/s figure, the
read/write mix counts backend calls, and the profile prints a µs/request figure.

A smoke test only: it asserts no speed (DESIGN.md section 9); the numbers are for people.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import struct
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
    """The report command on a tiny budget: well-formed Markdown (goals, machine, one table per
    worker count with saturated and half-load figures, WebSocket), a PNG chart, results.json."""
    assert shutil.which("wrk"), "wrk is missing: tests/run installs it (tests/peers/apt.txt)"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.bench.report", "--workers", "1", "--duration", "1", "--rounds", "1",
         "--warmup", "1", "--half-duration", "1", "--connections", "4", "--out", str(tmp_path),
         "--target", "me", "--target", "gql_me", "--target", "gql_employees",
         "--ws-sockets", "50", "--ws-broadcasts", "2", "--events-rounds", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=280,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "REPORT.md").read_text()
    sections = re.findall(r"^## (.+)$", report, re.M)
    assert sections[:4] == ["Goals", "Machine", "Method", "1 worker(s)"], sections
    assert "WebSocket broadcast (1 worker each)" in sections and "Kafka events (1 worker)" not in sections, sections
    assert "](chart.png)" in report

    # The machine, read at run time.
    assert f"{os.cpu_count()} cores" in report
    assert f"Linux {platform.release()}" in report
    assert f"Granian {importlib.metadata.version('granian')}" in report
    assert f"CPython {platform.python_version()}" in report

    # One row per target with every figure; the gateway's REST read has its FastAPI ratio.
    number = r"[\d,.]+"
    expected = {"hello": "hello", "me": "gateway", "gql_me": "gateway", "gql_employees": "gateway", "fastapi-me": "fastapi"}
    for name, server in expected.items():
        row = re.search(rf"^\| {re.escape(name)} \| {server} \|(.*)\|$", report, re.M)
        assert row, f"no row for {name}:\n{report}"
        cells = [c.strip() for c in row.group(1).split("|")]
        # req/s, p50, p99, vs bare, CPU µs/request, CPU vs bare, vs FastAPI, half rate (sent), p50, p99, lag
        assert len(cells) == 11, cells
        for i in (0, 1, 2, 3, 4, 5, 8, 9, 10):
            assert re.fullmatch(number, cells[i]), (name, i, cells)
        assert float(cells[4]) > 0, cells  # the server's own CPU was read from /proc
        assert re.fullmatch(rf"{number} \({number}\)", cells[7]), cells
        assert re.fullmatch(rf"{number}x", cells[6]) if name == "me" else cells[6] == "", cells
    assert re.search(r"^50-employee GraphQL query: [\d.]+ backend calls per request", report, re.M), report

    # The goals of issues 11, 12, 15 and 16, each with a verdict.
    goals = re.findall(r"^\| ([\d, ]+) \| (.+) \| (.+) \| (.+) \|$", report.split("## Machine")[0], re.M)
    assert {g[0] for g in goals} >= {"11", "12", "15", "15, 16", "16"}, goals
    assert all(g[3] in ("**met**", "**not met**", "n/a") for g in goals), goals
    assert any("half its saturating load, 1 worker(s)" in g[1] for g in goals), goals

    results = orjson.loads((tmp_path / "results.json").read_bytes())
    targets = results["http"]["1"]["targets"]
    assert set(targets) == set(expected), sorted(targets)
    for name, r in targets.items():
        half = r["half"]
        assert half["requests"] > 0 and half["p99_ms"] >= half["p50_ms"] > 0, (name, half)
        assert half["non_2xx"] == 0 and half["errors"] == 0 and r["non_2xx"] == 0 and r["errors"] == 0, (name, r)
    assert results["http"]["1"]["graphql_employees_calls"]["calls_per_request"] > 0
    assert results["websocket"]["gateway"]["deliveries"] == 50 * 2

    # --render writes the same report again from results.json, measuring nothing.
    again = tmp_path / "again"
    rendered = subprocess.run([sys.executable, "-m", "loadtests.bench.report", "--render", str(tmp_path / "results.json"),
                               "--out", str(again)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    assert (again / "REPORT.md").read_text() == report

    png = (tmp_path / "chart.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert width > 1000 and height > 300, (width, height)


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


def test_valkey_client_bench_measures_standalone_cluster_and_sentinel() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.bench.valkey_clients", "--calls", "500", "--rounds", "1", "--no-valkey-py"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {m.group(1).strip(): (float(m.group(2)), float(m.group(3)))
            for m in re.finditer(r"^  (\S.*?)\s+([\d.]+)\s+([\d.]+)$", done.stdout, re.M)}
    assert set(rows) == {"ValkeyMux (standalone)", "ClusterMux (3 primaries)", "SentinelMux (via 3 sentinels)"}, done.stdout
    assert all(get > 0 and evalsha > 0 for get, evalsha in rows.values()), rows
