"""The bench runs end to end: every target answers 2xx under load and gets a req/s figure.

A smoke test only: it asserts no speed (DESIGN.md section 9); the numbers are for people.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from loadtests.bench.targets import BASELINE, TARGETS

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)"),
]


def test_bench_measures_every_target_without_errors(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.bench", "--duration", "1", "--rounds", "1", "--connections", "4",
         "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = orjson.loads(out.read_bytes())["targets"]
    for target in (BASELINE, *TARGETS):
        assert target.name in results, f"{target.name} missing from {sorted(results)}"
        result = results[target.name]
        assert result["rps"] > 0, result
        assert result["non_2xx"] == 0, result
        assert result["errors"] == 0, result
