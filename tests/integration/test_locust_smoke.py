"""The Locust journey runs against a real gateway with no failed request (a smoke test:
it asserts correctness under a little load, never speed)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_journey_passes_under_load(gateway, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(REPO / "loadtests" / "locustfile.py"), "--headless",
         "-u", "8", "-r", "8", "-t", "6s", "--host", gateway.url, "--csv", str(tmp_path / "run"),
         "--only-summary", "--stop-timeout", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "run_stats.csv") as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    assert int(rows["Aggregated"]["Request Count"]) > 8  # more than the sign-ins: the journeys ran
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    assert int(rows["/api/v1/auth/login"]["Request Count"]) == 8  # every user signed in once
    # Every journey ran: the profile reader's and the customer editor's requests both show.
    assert int(rows["/api/v1/auth/me"]["Request Count"]) > 0
    assert int(rows["/api/v1/crm/customers"]["Request Count"]) > 0
    assert int(rows["notification"]["Request Count"]) > 0  # published by REST, received on /ws
