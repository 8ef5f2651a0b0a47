"""infra/ files about observability agree with the code: every metric name the alert rules and
the dashboard use exists, and the Fluent Bit example reads our lines into our indices."""

from __future__ import annotations

import configparser
import datetime
import json
import logging
import re
from pathlib import Path

from runtime.config import load_config
from runtime.observability import metrics
from runtime.observability.logs import JsonFormatter

INFRA = Path(__file__).resolve().parents[2] / "infra"


def exported_names() -> set[str]:
    """Every sample name /metrics can show (a counter's _total, a histogram's _bucket ...)."""
    names = set()
    for metric in metrics.REGISTRY.collect():
        for suffix in ("", "_total", "_bucket", "_count", "_sum", "_created"):
            names.add(metric.name + suffix)
    return names


def used_names(text: str) -> set[str]:
    return set(re.findall(r"\bgateway_[a-z_]+\b", text))


def test_alert_rules_use_only_exported_metrics():
    used = used_names((INFRA / "prometheus" / "alerts.yml").read_text())
    assert used and used <= exported_names(), used - exported_names()


def test_dashboard_queries_use_only_exported_metrics():
    doc = json.loads((INFRA / "grafana" / "erp-gateway-dashboard.json").read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    used = used_names("\n".join(exprs))
    assert used <= exported_names(), used - exported_names()
    # Every family the gateway exports is on the dashboard (log shipping aside).
    families = {m.name for m in metrics.REGISTRY.collect() if not m.name.startswith("gateway_log_")}
    shown = {name for name in families if any(name in e for e in exprs)}
    assert shown == families, families - shown


def _fluent_bit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, delimiters=(" ",), comment_prefixes=("#",), interpolation=None)
    parser.optionxform = str
    text = (INFRA / "logging" / name).read_text()
    parser.read_string(re.sub(r"^\s+", "", text, flags=re.M))  # sections may repeat: read the last
    return parser


def test_fluent_bit_example_writes_our_indices_from_our_timestamps():
    conf, parsers = _fluent_bit("fluent-bit.conf"), _fluent_bit("parsers.conf")
    output, parser = conf["OUTPUT"], parsers["PARSER"]
    assert output["Logstash_Prefix"].strip() == load_config(env={}).logging.elasticsearch.index
    assert output["Logstash_DateFormat"].strip() == "%Y.%m.%d"  # the shipper's daily suffix
    assert conf["FILTER"]["Parser"].strip() == parser["Name"].strip() == "gateway_ecs"
    # The parser's time format reads what the gateway writes (%L: milliseconds).
    record = logging.LogRecord("gateway.access", logging.INFO, "", 0, "x", None, None)
    stamp = json.loads(JsonFormatter().format(record))["@timestamp"]
    python_format = parser["Time_Format"].strip().replace("%L", "%f")
    parsed = datetime.datetime.strptime(stamp, python_format).replace(tzinfo=datetime.UTC)
    assert abs(parsed.timestamp() - record.created) < 0.002
