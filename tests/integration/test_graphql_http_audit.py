"""The reference GraphQL-over-HTTP audit (npm `graphql-http`'s auditServer), run with Node
against the real gateway: every MUST passes; the SHOULDs that pass are counted and printed
(`pytest -s`), and must not fall below what they are today.

Node and the package come from tests/peers (apt.txt, js.sh); a missing one fails the test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

JS = Path(__file__).resolve().parents[2] / "clients" / "js"
SHOULDS_PASSING = 20  # of 20 in graphql-http 1.22.4


def test_graphql_http_audit(gateway):
    run = subprocess.run(["node", str(JS / "audit.mjs"), gateway.url + "/graphql"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    musts = [r for r in report if r["name"].startswith("MUST")]
    shoulds = [r for r in report if r["name"].startswith("SHOULD")]
    assert len(musts) >= 10  # the audit ran, not an empty report
    assert [f"{r['name']}: {r['reason']}" for r in musts if r["status"] != "ok"] == []
    passing = sum(r["status"] == "ok" for r in shoulds)
    print(f"\ngraphql-http audit: MUST {len(musts)}/{len(musts)}, SHOULD {passing}/{len(shoulds)}")
    assert passing >= SHOULDS_PASSING, [f"{r['name']}: {r['reason']}" for r in shoulds if r["status"] != "ok"]
