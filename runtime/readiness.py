"""Readiness: the latest background health check of every dependency (runtime.backends.health),
and each backend's circuit breaker.

Required dependencies (those whose domain declares `required=True`, runtime.domains: the
auth backend, without which nobody can sign in) make the gateway unavailable (503) while
they are down; the others make it degraded but still serving.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.resources import Resources

from runtime.responses import Record
from runtime.valkey_sentinel import SentinelMux

# What check_dependencies answers, for /openapi.json (kept next to the code that builds it).
DEPENDENCY = Record("Dependency", {
    "status": {"type": "string", "enum": ["up", "down"]},
    "latency_ms": {"type": "number", "minimum": 0, "description": "Of the latest health check"},
    "checked_ms_ago": {"type": "integer", "minimum": 0},
    "required": {"type": "boolean", "description": "While a required dependency is down, /ready answers 503"},
    "error": {"type": "string", "description": "Why it is down"},
    "breaker": {"type": "string", "enum": ["closed", "open", "half_open"],
                "description": "gRPC backends, and valkey's request path: the circuit breaker"},
    "in_flight": {"type": "integer", "minimum": 0, "description": "gRPC backends: calls in progress"},
    "tls": {"type": "string", "enum": ["none", "server", "mutual"],
            "description": "gRPC backends: plaintext, TLS, or mutual TLS (grpc.tls)"},
    "rate_limits": {"type": "string", "enum": ["shared", "local"], "description": "valkey: where rate limits are counted"},
    "revocations": {"type": "string",
                    "enum": ["synced", "per-request", "unchecked (fail_open)", "unchecked (fail_closed)"],
                    "description": "valkey: how revocations are checked; unchecked while neither the feed nor "
                                   "Valkey answers (security.revocation_unavailable decides)"},
    "revocation_checks_unchecked": {"type": "integer", "minimum": 0,
                                    "description": "valkey: checks this worker answered by that policy, in all"},
    "realtime": {"type": "string", "enum": ["subscribed", "resubscribing"],
                 "description": "valkey: whether this worker's realtime fan-out subscription is live"},
    "mode": {"type": "string", "enum": ["direct", "spooling", "spool-only"],
             "description": "kafka: events go to the broker, to the spool while it is away, or only to the spool"},
    "brokers": {"type": "string", "description": "kafka: the bootstrap brokers"},
    "queued": {"type": "integer", "minimum": 0, "description": "kafka: events in the producer's queue"},
    "spool": {"type": "object", "description": "kafka: the spool (pending events, bytes, max_bytes, fill, refused)",
              "additionalProperties": {"type": "number"}},
    "counters": {"type": "object", "description": "kafka: emitted, produced, spooled, replayed, retried, "
                 "dead_lettered, dropped, queue_full", "additionalProperties": {"type": "integer", "minimum": 0}},
    "near_cache": {"type": "string", "enum": ["live", "blind"],
                   "description": "valkey: the per-worker near cache; blind (flushed and bypassed) while "
                                  "invalidations cannot be received"},
    "cluster": {"type": "object", "description": "valkey with redis.mode cluster: the request path's view of it",
                "required": ["state", "slots_covered", "primaries", "redirects"],
                "properties": {
                    "state": {"type": "string", "description": "cluster_state from CLUSTER INFO (ok, fail)"},
                    "slots_covered": {"type": "integer", "minimum": 0, "maximum": 16384,
                                      "description": "slots the slot map assigns to a primary"},
                    "primaries": {"type": "object", "description": "host:port -> its breaker and replicas",
                                  "additionalProperties": {"type": "object", "properties": {
                                      "breaker": {"type": "string", "enum": ["closed", "open", "half_open"]},
                                      "replicas": {"type": "array", "items": {"type": "string"}}}}},
                    "redirects": {"type": "object", "description": "MOVED, ASK and TRYAGAIN answers followed",
                                  "additionalProperties": {"type": "integer", "minimum": 0}},
                }},
    "sentinel": {"type": "object", "description": "valkey with redis.mode sentinel: the primary the sentinels named",
                 "required": ["master", "primary", "sentinels", "watching", "switches"],
                 "properties": {
                     "master": {"type": "string", "description": "the name the sentinels monitor (redis.sentinel_master)"},
                     "primary": {"type": ["string", "null"],
                                 "description": "host:port named by a sentinel and verified by ROLE; null while unknown"},
                     "sentinels": {"type": "array", "items": {"type": "string"}},
                     "watching": {"type": ["string", "null"],
                                  "description": "the sentinel whose +switch-master announcements are followed"},
                     "switches": {"type": "integer", "minimum": 0, "description": "failovers announced"},
                 }},
}, optional=("error", "breaker", "in_flight", "tls", "rate_limits", "revocations", "revocation_checks_unchecked",
             "realtime", "near_cache", "cluster", "sentinel", "mode", "brokers", "queued", "spool", "counters"),
   doc="One dependency's health")
READINESS = Record("Readiness", {
    "status": {"type": "string", "enum": ["ready", "degraded", "unavailable"]},
    "dependencies": {"type": "object", "additionalProperties": DEPENDENCY},
}, doc="Each dependency with its status and latency")


async def check_dependencies(resources: "Resources") -> dict[str, Any]:
    monitor, now = resources.health, time.monotonic()
    dependencies = {}
    for name, health in monitor.results.items():
        result: dict[str, Any] = {
            "status": "up" if health.up and not monitor.is_stale(health) else "down",
            "latency_ms": health.latency_ms,
            "checked_ms_ago": round((now - health.checked_at) * 1000),
        }
        if health.error or monitor.is_stale(health):
            result["error"] = health.error or "stale"
        client = resources.backends.clients.get(name)
        if client is not None:
            result["breaker"] = client.breaker.state
            result["in_flight"] = client.in_flight
            result["tls"] = client.tls
        result["required"] = name in resources.required
        dependencies[name] = result
    valkey = dependencies.get("valkey")
    if resources.limiter is not None and valkey is not None:
        # The limiter's own view: its last call may have failed before the next health check.
        synced = resources.limiter.synced
        shared = resources.limiter.shared and (synced is None or synced.shared)
        valkey["rate_limits"] = "shared" if shared else "local"
        if valkey["rate_limits"] == "local" and valkey["status"] == "up":
            valkey["status"], valkey["error"] = "down", "rate limits counted per worker"
    if valkey is not None:
        mux = resources.valkey_mux
        valkey["breaker"] = mux.breaker_state  # the request path's view, which fails fast while open
        if valkey["status"] == "up" and not mux.available:
            valkey["status"], valkey["error"] = "down", "request path failing fast (breaker open)"
        if isinstance(mux, SentinelMux):  # redis.mode: sentinel: the primary they named, verified
            valkey["sentinel"] = mux.describe()
            if valkey["status"] == "up" and mux.primary is None:
                valkey["status"], valkey["error"] = "down", "no primary known: " + (mux.last_error or "not resolved yet")
        elif (describe := getattr(mux, "describe", None)) is not None:
            # redis.mode: cluster: its state, primaries, replicas, redirects followed
            valkey["cluster"] = describe()
        # While the feed is not synced each request asks Valkey (correct, slower); while neither
        # answers, `security.revocation_unavailable` decides and readiness is degraded.
        revocations = resources.revocations
        if revocations.blind:
            valkey["revocations"] = f"unchecked ({revocations.unavailable})"
            if valkey["status"] == "up":
                valkey["status"], valkey["error"] = "down", "revocations cannot be checked"
        else:
            valkey["revocations"] = "synced" if revocations.synced else "per-request"
        valkey["revocation_checks_unchecked"] = revocations.unchecked
        # Whether this worker's realtime fan-out subscription is live (messages reach its sockets).
        valkey["realtime"] = "subscribed" if resources.realtime.subscribed else "resubscribing"
        near = resources.cache.near if resources.cache is not None else None
        if near is not None:  # blind costs speed (every read goes to Valkey), never correctness
            valkey["near_cache"] = "live" if near.live else "blind"
    if resources.events is not None:
        # Optional: while the broker is away events go to the spool, so the gateway is degraded.
        dependencies["kafka"] = resources.events.health()
    down = {n for n, r in dependencies.items() if r["status"] == "down"}
    status = "unavailable" if down & resources.required else "degraded" if down else "ready"
    return {"status": status, "dependencies": dependencies}
