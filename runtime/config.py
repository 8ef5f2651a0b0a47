"""Gateway configuration: defaults < YAML file < ``ERP_<SECTION>_<KEY>`` environment.

The schema is declarative: one ``Section`` per config section, mapping each field
name to ``F(kind, default, doc, secret=...)``. ``load_config`` layers the sources,
validates every value against its kind and returns frozen dataclasses. Every
failure is a one-line ``ConfigError`` naming the key, the value, what was expected
and where the value came from, so start-up stops with something actionable.

Adding a section: declare a ``Section`` below and append it to ``SECTIONS``. A key that
is accepted but not acted on yet says so (``F(..., pending="why")``, or on a whole
section): ``gw config`` marks it and start-up logs it, so it is never shown as if it worked.
Defaults that depend on the backend domains (``grpc.services``, ``cache.policies``) come
from their declarations next to the handlers (runtime.domains).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping
from urllib.parse import urlsplit

import yaml

from proto.erp.auth.v1.contract import ROLES as ROLE_CATALOGUE
from runtime.rbac import check_roles, is_required_permission

__all__ = [
    "load_config", "Config", "ConfigError", "describe", "pending_keys", "NON_CONFIG_ENV",
    "F", "Section", "SectionMap", "Str", "Int", "Float", "Bool", "Duration", "Enum",
    "List", "Map", "REQUIRED", "parse_duration", "format_duration",
]

ENV_PREFIX = "ERP_"
# ERP_* variables that are not configuration keys (so they are not rejected as unknown).
NON_CONFIG_ENV: frozenset[str] = frozenset()


class ConfigError(ValueError):
    """A bad configuration; str() is one line naming key, value and expectation."""


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # default for fields that the file or env must supply
_SAME = object()


class _Invalid(Exception):
    """Raised by kinds; the engine turns it into a ConfigError with key and source."""

    def __init__(self, expected: str, value: Any = _SAME, suffix: str = ""):
        self.expected, self.value, self.suffix = expected, value, suffix


# --------------------------------------------------------------------------- kinds
# A kind parses a raw value (YAML scalar/list, or an env string) and renders it back.

class Kind:
    expected: Any = "a value"  # a str, or a property that builds one

    def parse(self, v: Any) -> Any:
        raise NotImplementedError

    def show(self, v: Any) -> str:
        return str(v)


class Str(Kind):
    def __init__(self, check: Callable[[str], bool] | None = None, expected: str = "a string"):
        self.check, self.expected = check, expected

    def parse(self, v: Any) -> str:
        if v is None:  # `password:` in YAML means empty, not "None"
            return ""
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str) or (self.check and not self.check(v)):
            raise _Invalid(self.expected)
        return v


class _Number(Kind):
    noun: str = "a number"
    cast: Callable[[Any], Any] = float
    types: Any = (int, float)

    def __init__(self, min: float | None = None, max: float | None = None):
        self.min, self.max = min, max

    @property
    def expected(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{self.noun} between {self.min} and {self.max}"
        if self.min is not None:
            return f"{self.noun} of at least {self.min}"
        if self.max is not None:
            return f"{self.noun} of at most {self.max}"
        return self.noun

    def parse(self, v: Any) -> Any:
        if isinstance(v, str):
            try:
                v = self.cast(v.strip())
            except ValueError:
                raise _Invalid(self.expected) from None
        if isinstance(v, bool) or not isinstance(v, self.types) or not math.isfinite(v):
            raise _Invalid(self.expected)
        if (self.min is not None and v < self.min) or (self.max is not None and v > self.max):
            raise _Invalid(self.expected)
        return self.cast(v)


class Int(_Number):
    noun, cast, types = "an integer", int, (int,)


class Float(_Number):
    pass


class Bool(Kind):
    expected = "a boolean (true/false, yes/no, 1/0)"
    _WORDS: ClassVar[dict[str, bool]] = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

    def parse(self, v: Any) -> bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        if isinstance(v, str) and v.strip().lower() in self._WORDS:
            return self._WORDS[v.strip().lower()]
        raise _Invalid(self.expected)

    def show(self, v: bool) -> str:
        return "true" if v else "false"


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DUR_PART = r"(\d+(?:\.\d+)?)(ms|s|m|h|d)"  # "ms" before "m" so 500ms is not 500m + s
_DURATION = re.compile(f"(?:{_DUR_PART})+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str) -> float:
    """'1h30m' -> 5400.0; a bare number is seconds. Raises ValueError."""
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    if not _DURATION.fullmatch(text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in re.findall(_DUR_PART, text))


def format_duration(seconds: float) -> str:
    """Inverse of parse_duration for display: 5400.0 -> '1h30m', 0.5 -> '500ms'."""
    ms = round(seconds * 1000)
    if ms == 0 or abs(ms - seconds * 1000) > 1e-6:
        return f"{seconds:g}s"
    out = ""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        q, ms = divmod(ms, size)
        out += f"{q}{unit}" if q else ""
    return out


class Duration(Kind):
    """Seconds as float. YAML may give a bare number (seconds)."""

    def __init__(self, min: float | None = None, max: float | None = None):
        self.min, self.max = min, max

    @property
    def expected(self) -> str:
        bounds = []
        if self.min is not None:
            bounds.append(f"at least {format_duration(self.min)}")
        if self.max is not None:
            bounds.append(f"at most {format_duration(self.max)}")
        return "a duration like 30s, 5m, 1h, 500ms" + (f" ({', '.join(bounds)})" if bounds else "")

    def parse(self, v: Any) -> float:
        if isinstance(v, str):
            try:
                v = parse_duration(v)
            except ValueError:
                raise _Invalid(self.expected) from None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise _Invalid(self.expected)
        if (self.min is not None and v < self.min) or (self.max is not None and v > self.max):
            raise _Invalid(self.expected)
        return float(v)

    def show(self, v: float) -> str:
        return format_duration(v)


class Enum(Kind):
    """Case-insensitive match; the value becomes the declared spelling."""

    def __init__(self, *choices: str):
        self.choices = choices
        self.expected = "one of " + ", ".join(choices)

    def parse(self, v: Any) -> str:
        if isinstance(v, (int, float)) and not isinstance(v, bool):  # YAML reads `1.3` as a number
            v = str(v)
        if isinstance(v, str):
            for c in self.choices:
                if c.lower() == v.strip().lower():
                    return c
        raise _Invalid(self.expected)


class List(Kind):
    """Tuple of items; a string (always the case from env) is split on commas."""

    def __init__(self, item: Kind | None = None, min_items: int = 0):
        self.item, self.min_items = item or Str(), min_items
        self.expected = ("a non-empty" if min_items else "a") + f" list (comma separated) of {self.item.expected}"

    def parse(self, v: Any) -> tuple:
        if isinstance(v, str):
            v = [p.strip() for p in v.split(",") if p.strip()]
        if v is None:
            v = []
        if not isinstance(v, (list, tuple)) or len(v) < self.min_items:
            raise _Invalid(self.expected)
        out = []
        for i, x in enumerate(v):
            try:
                out.append(self.item.parse(x))
            except _Invalid as e:
                raise _Invalid(e.expected, x if e.value is _SAME else e.value, f"[{i}]") from None
        return tuple(out)

    def show(self, v: tuple) -> str:
        return ",".join(self.item.show(x) for x in v)


class Map(Kind):
    """name -> value (read-only dict). Env sets one entry: ERP_<SECTION>_<MAP>_<NAME>.
    ``keys``, when given, is the tuple of allowed names or a function returning it."""

    def __init__(self, value: Kind | None = None,
                 keys: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None):
        self.value, self._keys = value or Str(), keys
        self.expected = f"a mapping of name to {self.value.expected}"

    @property
    def keys(self) -> tuple[str, ...] | None:
        return self._keys() if callable(self._keys) else self._keys


@dataclasses.dataclass(frozen=True)
class F:
    """One field: kind, default (raw form is fine, it is parsed too; a function is called
    at load time), doc, secret, and ``pending``: why the key is accepted but not acted on
    yet (empty when it takes effect)."""

    kind: Any
    default: Any = REQUIRED
    doc: str = ""
    secret: bool = False
    pending: str = ""


class Section:
    """A table of fields -> a frozen dataclass. ``validate(obj)`` runs after build
    for cross-field checks; it may raise ConfigError or ValueError (prefixed with
    the section's key)."""

    expected = "a mapping"

    def __init__(self, name: str, fields: Mapping[str, F], doc: str = "",
                 validate: Callable[[Any], None] | None = None, cls_name: str | None = None,
                 pending: str = ""):
        self.name, self.fields, self.doc, self.validate = name, dict(fields), doc, validate
        self.pending = pending  # why the whole section is accepted but not acted on yet
        cls_name = cls_name or "".join(p.title() for p in name.split("_")) + "Config"
        self.cls = dataclasses.make_dataclass(cls_name, [(n, Any) for n in self.fields], frozen=True)
        self.cls.__doc__ = doc or None
        self.cls.__module__ = __name__


class SectionMap:
    """name -> sub-section (read-only dict). The default is a dict of entries; the
    file adds or replaces whole entries, env sets single fields of one entry."""

    def __init__(self, section: Section):
        self.section = section
        self.expected = f"a mapping of name to {{{', '.join(section.fields)}}}"


# ------------------------------------------------------------------ validators

def _host_port(v: str) -> bool:
    host, sep, port = v.rpartition(":")
    return bool(sep and host and port.isdigit() and 1 <= int(port) <= 65535)


def _ip_or_cidr(v: str) -> bool:
    try:
        ipaddress.ip_network(v.strip(), strict=False)
        return True
    except ValueError:
        return False


def _http_url(v: str, allow_empty: bool = False) -> bool:
    if v == "":
        return allow_empty
    parts = urlsplit(v)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


HOST_PORT = Str(_host_port, "a host:port address like localhost:50051")
HTTP_URL = Str(_http_url, "an http(s) URL")
HTTP_URL_OR_EMPTY = Str(lambda v: _http_url(v, True), "an http(s) URL or empty")
_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Asymmetric algorithms only: "none" and HS* would let a client or a shared secret mint tokens.
_JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256")


def _readable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.R_OK)


def _check_files(c: Any, *fields: str) -> None:
    for field in fields:
        path = getattr(c, field)
        if path and not _readable(path):
            raise ValueError(f"{field}: {path!r} is not a readable file")


def _check_server_tls(c: Any) -> None:
    if not c.tls_enabled:
        return
    for field in ("tls_cert_file", "tls_key_file"):
        if not getattr(c, field):
            raise ValueError(f"{field}: missing (expected a PEM file path when tls_enabled is true)")
    _check_files(c, "tls_cert_file", "tls_key_file")
    with open(c.tls_key_file, "rb") as fh:
        head = fh.read(64)
    if b"-----BEGIN RSA PRIVATE KEY" in head or b"-----BEGIN EC PRIVATE KEY" in head:
        raise ValueError(f"tls_key_file: {c.tls_key_file!r} is not PKCS#8, which Granian requires "
                         "(convert it with: openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY8)")


def _check_grpc_tls(c: Any) -> None:
    if bool(c.cert_file) != bool(c.key_file):
        raise ValueError("cert_file: mutual TLS needs both cert_file and key_file (or neither, for TLS)")
    _check_files(c, "ca_file", "cert_file", "key_file")


def _check_cors(c: Any) -> None:
    # Browsers reject `Access-Control-Allow-Origin: *` with credentials.
    if c.allow_credentials and "*" in c.allowed_origins:
        raise ValueError("allowed_origins '*' cannot be combined with allow_credentials true "
                         "(expected explicit origins, or allow_credentials false)")


# ---------------------------------------------------------------------- schema

# Defaults declared by each backend domain next to its handlers (runtime.domains); imported
# when a configuration is loaded, not when this module is, so the handlers can import runtime.
def _domain_cache_policies() -> dict[str, Any]:
    from runtime.domains import declared
    return {name: dict(p) for d in declared().values() for name, p in d.cache_policies.items()}


def _domain_services() -> dict[str, str]:
    from runtime.domains import declared
    return {d.service: d.address for d in declared().values()}


# Granian has no response write timeout, and the application cannot make one: an answer is
# handed to Granian in one piece (2 MiB at most, limits.max_response_bytes), which the kernel's
# socket buffers take at once, so there is no write left for the application to time.
_NO_WRITE_TIMEOUT = "no effect: Granian has no response write timeout"

SERVER = Section("server", {
    "host": F(Str(), "0.0.0.0", "Listen address of `python -m runtime.serve` (gw serve: its --host)."),
    "port": F(Int(1, 65535), 8080, "Listen port (gw serve: unless --port)."),
    "read_timeout": F(Duration(min=0.001, max=60), "30s",
                      "Time allowed to read a request: its headers (Granian's HTTP/1 header read timeout) "
                      "and its whole body (408)."),
    "write_timeout": F(Duration(min=0.001), "30s", "Accepted so that the seed's configuration files load; no effect "
                       "(README: Configuration).", pending=_NO_WRITE_TIMEOUT),
    "shutdown_timeout": F(Duration(min=1, max=1800), "10s",
                          "Grace period for in-flight requests on stop, then workers are killed."),
    "workers": F(Int(1, 64), 1, "Granian worker processes (gw serve: unless --workers)."),
    "max_body_bytes": F(Int(min=1), 1_048_576, "Largest accepted request body."),
    "request_timeout": F(Duration(min=0.001), "30s", "Per-request budget across all backend calls."),
    "trusted_proxies": F(List(Str(_ip_or_cidr, "an IP address or CIDR")), [],
                         "Proxies whose X-Forwarded-For is believed."),
    "reload_interval": F(Duration(), "1s", "How often each worker checks CONFIG_FILE for changes to rbac, "
                         "rate_limits and cors, applied without a restart (0 turns it off)."),
    "shared_listener": F(Bool(), False, "One listening socket shared by the Granian workers (runtime.serve): "
                         "worker restarts drop no connection, but connections spread unevenly."),
    "tls_enabled": F(Bool(), False, "Serve HTTPS only (Granian's TLS), and send HSTS."),
    "tls_cert_file": F(Str(), "", "PEM certificate chain served to clients (required with tls_enabled)."),
    "tls_key_file": F(Str(), "", "PEM private key of that certificate, PKCS#8 (required with tls_enabled)."),
    "tls_key_password": F(Str(), "", "Password of an encrypted tls_key_file.", secret=True),
    "tls_min_version": F(Enum("1.2", "1.3"), "1.2", "Oldest TLS version accepted."),
}, "HTTP listener.", validate=lambda c: _check_server_tls(c))

REDIS = Section("redis", {
    "host": F(Str(), "localhost", "Redis-protocol server (Valkey by default)."),
    "port": F(Int(1, 65535), 6379, "Server port."),
    "password": F(Str(), "", "AUTH password.", secret=True),
    "db": F(Int(min=0), 0, "Database number."),
    "pool_size": F(Int(min=1), 10, "Connection pool size."),
    "connections": F(Int(1, 16), 1, "Multiplexed connections per worker for rate limits and the cache."),
    "max_retries": F(Int(min=0), 3, "Retries per command after a lost connection or a timeout, backing off, for "
                     "the revocation feed (and the standalone health check; the request path never retries: see breaker_cooldown)."),
    "key_prefix": F(Str(), "erp:gw:", "Prefix of every key the gateway writes."),
    "timeout": F(Duration(min=0.001), "1s", "Per-command timeout."),
    "breaker_cooldown": F(Duration(min=0.001), "1s",
                          "After a timeout or lost connection, how long the request path skips Valkey before probing it."),
    "mode": F(Enum("standalone", "cluster", "sentinel"), "standalone",
              "standalone: one server (host, port); cluster: a Valkey Cluster, host:port and cluster_nodes its seeds; "
              "sentinel: the primary the sentinels name (host and port unused), followed through failovers."),
    "cluster_nodes": F(List(HOST_PORT), [], "More seed nodes of the cluster besides host:port (mode: cluster)."),
    "cluster_refresh_interval": F(Duration(min=0.1), "5s",
                                  "How often the slot map is re-read when nothing prompts it (MOVED and lost nodes do at once)."),
    "sentinels": F(List(HOST_PORT), [], "Sentinels asked in turn for the primary, as host:port (mode: sentinel; at least one)."),
    "sentinel_master": F(Str(lambda v: bool(v.strip()), "a non-empty name"), "erp",
                         "The name the sentinels monitor the primary under (`sentinel monitor <name> ...`)."),
    "sentinel_password": F(Str(), "", "AUTH password of the sentinels themselves, if they have one "
                           "(redis.password is the primary's).", secret=True),
}, "Shared state: revocation, rate limits, sessions.", validate=lambda c: _check_redis(c))


def _check_redis(c: Any) -> None:
    if c.mode == "sentinel" and not c.sentinels:
        raise ConfigError("redis.sentinels: empty with mode 'sentinel' (expected at least one sentinel as host:port, "
                          "e.g. ERP_REDIS_SENTINELS=sentinel-0:26379,sentinel-1:26379)")
    if c.mode == "cluster" and c.db != 0:
        raise ConfigError(f"redis.db: {c.db} with mode 'cluster' (a cluster has database 0 only)")

KAFKA = Section("kafka", {
    "enabled": F(Bool(), False, "Publish business events (to the brokers, or to the spool while they are away)."),
    "brokers": F(List(HOST_PORT), ["localhost:9092"], "Bootstrap brokers; empty: no broker, events only go to the spool."),
    "topic_prefix": F(Str(lambda v: bool(re.fullmatch(r"[A-Za-z0-9._-]+", v)), "a topic name prefix (letters, digits, . _ -)"),
                      "erp", "Prefix of event topic names: <prefix>.user-events, ..., <prefix>.dead-letter."),
    "retry_max": F(Int(min=1), 3, "Attempts at an event the broker refuses (retriably) before it is dead-lettered."),
    "batch_size": F(Int(min=1), 100, "Most events per produce request."),
    "client_id": F(Str(), "erp-api-gateway", "Kafka client id."),
    "source": F(Str(), "/erp/api-gateway", "CloudEvents `source` of every event."),
    "queue_max_messages": F(Int(min=1), 100_000, "Events the producer queues in memory; past it they are spooled."),
    "linger": F(Duration(), "5ms", "How long the producer waits to fill a batch."),
    "retry_backoff": F(Duration(min=0.001), "100ms", "First wait before a produce is retried (doubling)."),
    "retry_backoff_max": F(Duration(min=0.001), "2s", "Longest wait between retries."),
    "flush_timeout": F(Duration(), "5s", "On stop, how long a worker waits for the broker before spooling the rest."),
    "spool_dir": F(Str(), ".gw/events-spool", "Durable spool for events the broker cannot take now (one slot per worker)."),
    "spool_max_bytes": F(Int(min=4096), 256 * 1024 * 1024, "Spool size limit; past it events are dropped and counted."),
    "spool_fsync_interval": F(Duration(min=0.001), "50ms", "Spool appends are fsynced in batches this often."),
}, "Event publishing.")

GRPC_TLS = Section("grpc_tls", {
    "ca_file": F(Str(), "", "PEM CA bundle the service's certificate must chain to (empty: the system's roots)."),
    "cert_file": F(Str(), "", "Client certificate for mutual TLS (empty: TLS without a client certificate)."),
    "key_file": F(Str(), "", "Private key of the client certificate."),
    "server_name": F(Str(), "", "Name the service's certificate must carry, when not the host of its address."),
}, validate=_check_grpc_tls)


def _check_grpc(c: Any) -> None:
    for name in c.tls:
        if name not in c.services:
            raise ValueError(f"tls.{name}: not a backend service (known: {', '.join(c.services)})")


def _check_backoff(c: Any) -> None:
    if c.backoff_base > c.backoff_max:
        raise ValueError("backoff_base must not exceed backoff_max")


GRPC_RETRY = Section("grpc_retry", {
    "budget_ratio": F(Float(0, 1), 0.2, "Retries allowed as a share of calls, per backend."),
    "budget_floor": F(Int(min=0), 10, "Retries always in hand on top of the ratio (for quiet periods)."),
    "backoff_base": F(Duration(min=0.001), "50ms", "First retry waits up to this (full jitter), doubling each time."),
    "backoff_max": F(Duration(min=0.001), "1s", "Longest wait before a retry."),
}, "Retries of idempotent calls on UNAVAILABLE.", validate=_check_backoff)

GRPC_BREAKER = Section("grpc_breaker", {
    "failure_threshold": F(Int(min=1), 5, "Consecutive transient failures that open the circuit."),
    "cooldown": F(Duration(min=0.001), "5s", "How long an open circuit fails fast before probing."),
    "half_open_probes": F(Int(min=1), 1, "Calls let through at once to probe a half-open circuit."),
}, "Circuit breaker per backend.")

GRPC = Section("grpc", {
    "services": F(Map(HOST_PORT, keys=lambda: tuple(_domain_services())), _domain_services,
                  "Backend service addresses (one per domain declared under handlers/)."),
    "timeout": F(Duration(min=0.001), "30s", "Default per-call deadline."),
    "max_retry": F(Int(min=0), 3, "Retries of idempotent calls."),
    "retry": F(GRPC_RETRY, doc="Retry budget and backoff."),
    "breaker": F(GRPC_BREAKER, doc="Circuit breaker per backend."),
    "health_interval": F(Duration(min=0.05), "2s", "How often each backend's grpc.health.v1 is checked (for /ready)."),
    "tls": F(SectionMap(GRPC_TLS), {},
             "Per service: TLS to it (mutual TLS with cert_file and key_file); a service not listed is plaintext."),
}, "Backend gRPC services.", validate=_check_grpc)

JWT = Section("jwt", {
    "jwks_url": F(HTTP_URL, "http://localhost:8000/.well-known/jwks.json", "Where signing keys are fetched."),
    "cache_duration": F(Duration(min=0.001), "1h", "How long fetched keys are trusted."),
    "issuer": F(Str(), "erp-auth-service", "Required `iss` claim."),
    "audience": F(Str(), "erp-api-gateway", "Required `aud` claim."),
    "algorithms": F(List(Enum(*_JWT_ALGORITHMS), min_items=1), ["RS256"], "Accepted signature algorithms."),
    "leeway": F(Duration(max=300), "10s", "Clock skew allowed on exp/nbf/iat."),
    "unknown_kid_refetch_interval": F(Duration(), "30s", "Minimum gap between refetches for an unknown kid."),
    "token_cache_size": F(Int(min=0), 10_000, "Verified tokens kept in memory (0 disables)."),
    "jwks_poll_interval": F(Duration(), "1s",
                            "Keys are also refetched on this schedule, so a rotation or a withdrawn key is seen "
                            "within it whatever unknown kids strangers send (0 disables)."),
}, "Access-token verification.")

ELASTICSEARCH = Section("elasticsearch", {
    "url": F(HTTP_URL_OR_EMPTY, "", "Elasticsearch/OpenSearch base URL; empty disables shipping."),
    "index": F(Str(), "erp-api-gateway", "Index name prefix; records go to <index>-YYYY.MM.DD (UTC)."),
    "batch_size": F(Int(min=1), 100, "Records per bulk request."),
    "flush_interval": F(Duration(min=0.001), "5s", "Longest a record waits before shipping."),
    "buffer_size": F(Int(min=1), 10000, "Records held while the search engine is slow or gone; past it, "
                                        "new records are dropped and counted."),
    "timeout": F(Duration(min=0.001), "5s", "Longest one bulk request may take."),
}, "Log shipping.")

LOGGING = Section("logging", {
    "level": F(Enum("debug", "info", "warning", "error"), "info", "Minimum level."),
    "format": F(Enum("json", "text"), "json", "Line format: json (Elastic Common Schema names) or text."),
    "stream": F(Enum("stdout", "stderr"), "stdout", "Where log lines go."),
    "elasticsearch": F(ELASTICSEARCH, doc="Log shipping to Elasticsearch or OpenSearch (_bulk, daily index)."),
}, "Logging.")

CORS = Section("cors", {
    "allowed_origins": F(List(), ["http://localhost:3000"], "Origins allowed to call from a browser."),
    "allowed_methods": F(List(Enum(*_HTTP_METHODS)), ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                         "Methods allowed cross-origin."),
    "allowed_headers": F(List(), ["*"], "Request headers allowed cross-origin."),
    "exposed_headers": F(List(), ["X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
                                  "Retry-After", "ETag", "Location", "X-Cache"], "Response headers readable cross-origin."),
    "allow_credentials": F(Bool(), True, "Allow cookies/Authorization cross-origin."),
    "max_age": F(Duration(), "10m", "How long browsers cache a preflight."),
}, "Cross-origin requests.", validate=_check_cors)

def _check_rate_limit_policy(p: Any) -> None:
    # The limiter counts in microseconds: each request adds window/limit to the policy's
    # arrival time, so that must be at least 1 µs or it rounds to nothing (no limit at all).
    if p.window * 1_000_000 / p.limit < 1:
        most = int(p.window * 1_000_000)
        raise ValueError(f"limit: {p.limit} per {format_duration(p.window)} is more than one request per "
                         f"microsecond (expected at most {most} per {format_duration(p.window)})")


RATE_LIMIT_POLICY = Section("rate_limit_policy", {
    "limit": F(Int(min=1), REQUIRED, "Requests allowed per window."),
    "window": F(Duration(min=0.001), "1m", "The window the limit applies to."),
    "key": F(Enum("user", "ip", "email_ip", "domain"), "ip",
             "What is counted: the signed-in user, the client IP, the login email with the client IP, "
             "or the body's `domain` (registration)."),
    "mode": F(Enum("exact", "synced"), "synced",
              "exact: one Valkey round trip per request; synced: counted per worker, reconciled every "
              "sync_interval (stays exact when the fleet's overshoot would exceed 10% of the limit)."),
}, validate=_check_rate_limit_policy)


def _check_rate_limits(c: Any) -> None:
    # `user` and `anonymous` are the defaults of every route, which has no body to key on.
    if "service" in c.policies and c.policies["service"].key != "user":
        raise ValueError("policies.service.key must be 'user' (one budget per service account)")
    for name, key in (("user", "user"), ("anonymous", "ip")):
        if name not in c.policies:
            raise ValueError(f"policies.{name} is missing (expected the default policy for every route)")
        if c.policies[name].key != key:
            raise ValueError(f"policies.{name}.key must be {key!r}")


RATE_LIMITS = Section("rate_limits", {
    "enabled": F(Bool(), True, "Limit requests at all."),
    "sync_interval": F(Duration(min=0.001), "100ms", "How often a worker reconciles its synced counts with Valkey."),
    "fleet_workers": F(Int(min=1), 4, "Workers of every instance sharing the limits: sizes each worker's synced "
                                      "allowance so that together they overshoot by at most 10% of a limit."),
    "policies": F(SectionMap(RATE_LIMIT_POLICY), {
        "user": {"limit": 600, "window": "1m", "key": "user"},
        "anonymous": {"limit": 60, "window": "1m", "key": "ip"},
        "login": {"limit": 10, "window": "1m", "key": "email_ip"},
        "service": {"limit": 1200, "window": "1m", "key": "user"},
        "register": {"limit": 10, "window": "1h", "key": "ip"},
        "register_domain": {"limit": 5, "window": "1h", "key": "domain"},
    }, "Named policies; `user` (a person), `service` (a service account) or `anonymous` applies "
       "to every route, a route may add some."),
}, "Request rate limits, shared by every instance through Valkey.", validate=_check_rate_limits)

ROLE = Section("role", {
    "parents": F(List(), [], "Roles this one inherits every permission from (the roles directly below it)."),
    "permissions": F(List(), [], "Grants, domain.resource:action; * matches any one segment."),
    "description": F(Str(), "", "What the role is for (a note for people: shown by `gw config`, read by nothing)."),
})

RBAC = Section("rbac", {
    "roles": F(SectionMap(ROLE), ROLE_CATALOGUE, "The role hierarchy and its grants (default: the auth contract's catalogue)."),
}, "Hierarchical role-based access control.", validate=lambda c: check_roles(c.roles))

CACHE_POLICY = Section("cache_policy", {
    "ttl": F(Duration(), "60s", "How long an entry lives; writes through the gateway invalidate sooner."),
    "scope": F(Enum("organization", "user"), "organization", "Whose entry: the caller's organization or the caller."),
})

CACHE = Section("cache", {
    "enabled": F(Bool(), True, "Cache-aside in Valkey for routes that declare a cache policy."),
    "policies": F(SectionMap(CACHE_POLICY), _domain_cache_policies,
                  "Named cache policies, referenced by routes as cache=\"name\" (defaults: each domain's)."),
    "near": F(Bool(), True, "A near cache per worker in front of Valkey, invalidated by Valkey (CLIENT TRACKING)."),
    "near_max_entries": F(Int(min=1), 10_000, "Most entries one worker's near cache holds (least recently used out)."),
    "near_max_bytes": F(Int(min=1), 32 * 1024 * 1024, "Most bytes of entries (their JSON) one worker's near cache holds."),
}, "Response cache.")

METRICS = Section("metrics", {
    "enabled": F(Bool(), True, "Serve Prometheus metrics at /metrics (summed over every worker)."),
    "token": F(Str(lambda v: v == "" or len(v) >= 16, "empty, or a token of at least 16 characters"), "",
               "Bearer token /metrics requires (Authorization: Bearer <token>; else 401); empty: none.", secret=True),
    "allowed_networks": F(List(Str(_ip_or_cidr, "an IP address or CIDR")), [],
                          "Client addresses (IPs or CIDRs) /metrics answers (others: 403); empty: any."),
}, "Prometheus metrics.")

TRACING = Section("tracing", {
    "enabled": F(Bool(), False, "Record and export spans with the OpenTelemetry SDK (the `otel` extra); "
                                "off, spans are no-ops and a caller's traceparent is passed through."),
    "exporter": F(Enum("otlp", "console"), "otlp", "Where spans go: OTLP over HTTP, or stdout."),
    "endpoint": F(HTTP_URL_OR_EMPTY, "", "OTLP/HTTP traces URL; empty: the SDK's default (OTEL_EXPORTER_OTLP_*)."),
    "service_name": F(Str(), "erp-api-gateway", "service.name of every span."),
    "sample_ratio": F(Float(min=0.0, max=1.0), 1.0, "Share of new traces recorded; a caller's sampled flag is kept."),
}, "OpenTelemetry tracing.")

PROFILING = Section("profiling", {
    "enabled": F(Bool(), False, "Serve /debug/* (CPU profile, asyncio tasks, memory) to holders of system.debug:read."),
    "max_seconds": F(Duration(min=0.1), "30s", "Longest CPU or memory profile one request may ask for."),
}, "On-demand profiling of the serving worker.")

OBSERVABILITY = Section("observability", {
    "metrics": F(METRICS, doc="Prometheus metrics."),
    "tracing": F(TRACING, doc="OpenTelemetry tracing."),
    "profiling": F(PROFILING, doc="On-demand profiling."),
}, "Metrics, traces and profiling.")

GRAPHQL = Section("graphql", {
    "enabled": F(Bool(), True, "Serve GraphQL at /graphql."),
    "introspection": F(Bool(), True, "Answer __schema and __type queries (schema discovery by clients and tools)."),
    "graphiql": F(Bool(), False, "Serve the GraphiQL IDE at GET /graphql to browsers (gw serve turns it on)."),
    "graphiql_assets": F(Str(), "clients/js/node_modules", "Where npm installed graphiql, react and react-dom (relative: to the project)."),
    "max_document_bytes": F(Int(min=1), 16_384, "Largest query document accepted, before parsing."),
    "max_tokens": F(Int(min=1), 2_000, "Most lexical tokens in a document; parsing stops past it."),
    "max_depth": F(Int(min=1), 10, "Deepest nesting of fields in an operation."),
    "max_aliases": F(Int(min=0), 30, "Most aliased fields in an operation."),
    "max_complexity": F(Int(min=1), 5_000, "Highest cost: 1 per field, multiplied by the page size of the lists above it."),
    "document_cache_size": F(Int(min=0), 500, "Parsed and validated documents kept per worker."),
    "persisted_query_ttl": F(Duration(min=1), "24h", "How long an automatic persisted query stays registered."),
}, "GraphQL at /graphql: limits checked before execution, document cache, GraphiQL.")

REALTIME = Section("realtime", {
    "path": F(Str(lambda v: v.startswith("/"), "a path starting with /"), "/ws", "Where WebSockets connect."),
    "allowed_origins": F(List(), [], "Origins a browser may open a socket from; empty: cors.allowed_origins. "
                         "Clients that send no Origin (not browsers) are not refused for it."),
    "auth_timeout": F(Duration(min=0.001), "10s", "How long a socket without a token may take to send {type: auth}."),
    "ping_period": F(Duration(min=0.001), "25s", "A {type: ping} goes to a socket silent this long."),
    "pong_timeout": F(Duration(min=0.001), "10s", "A socket that answers nothing this long after a ping is closed."),
    "send_queue": F(Int(min=1), 256, "Messages waiting to be written to one socket; a socket past it is dropped."),
    "max_message_bytes": F(Int(min=64), 65_536, "Largest inbound message; larger closes with 1009."),
    "max_connections_per_user": F(Int(min=1), 10, "Open sockets per user across every instance; more are refused (4029)."),
    "message_rate": F(Float(min=0.001), 10.0, "Inbound messages per second a socket may send, sustained."),
    "message_burst": F(Int(min=1), 30, "Inbound messages a socket may send at once."),
    "history_window": F(Duration(min=0.001), "5m", "How long each channel keeps its messages for `since` resumes."),
    "history_max": F(Int(min=1), 1000, "Most messages a channel keeps for resumes."),
    "events_permission": F(Str(is_required_permission, "domain.resource:action"), "realtime.events:subscribe",
                           "Permission needed to subscribe to events:<type>."),
    "send_permission": F(Str(is_required_permission, "domain.resource:action"), "realtime.notifications:send",
                         "Permission needed to publish to a channel other than one's own notifications."),
    "broadcast_permission": F(Str(is_required_permission, "domain.resource:action"), "realtime.broadcast:send",
                              "Permission needed to publish to system:broadcast (every organization)."),
}, "WebSocket notifications (/ws) and their fan-out through Valkey.")

IDEMPOTENCY = Section("idempotency", {
    "enabled": F(Bool(), True, "Honour the Idempotency-Key header on signed-in POST and PATCH routes."),
    "ttl": F(Duration(min=1), "24h", "How long a write's answer is kept for replay."),
    "wait": F(Duration(), "5s", "How long a repeat waits for the first attempt to finish before a 409."),
    "max_key_length": F(Int(min=1, max=1024), 255, "Longest Idempotency-Key accepted."),
}, "Idempotent writes for clients that retry.")

LOGIN_FAILURES = Section("login_failures", {
    "limit": F(Int(min=0), 50, "Failed sign-ins allowed per account (email) across all client addresses (0 disables)."),
    "window": F(Duration(min=0.001), "15m", "The window that budget applies to."),
}, "Per-account budget of failed sign-ins.")

SECURITY = Section("security", {
    "login_failures": F(LOGIN_FAILURES, doc="Per-account budget of failed sign-ins; spent, sign-ins answer 429."),
    "revocation_unavailable": F(Enum("fail_open", "fail_closed"), "fail_open",
                                "While neither the revocation feed nor Valkey answers: accept tokens not known "
                                "to be revoked (fail_open) or answer 503 (fail_closed)."),
}, "Security trade-offs under failure.")


LIMITS = Section("limits", {
    "max_in_flight_per_address": F(Int(min=1), 32, "Requests one client address may have in progress at once, "
                                   "per worker; more are answered 429 and their connection closed."),
    "max_record_bytes": F(Int(min=256), 65_536, "Largest record a client may write, encoded; larger is 413."),
    "max_response_bytes": F(Int(min=1024), 2_097_152, "Largest list page a backend may answer, encoded; larger "
                            "is 400 naming page_size."),
}, "Bounds on what one client or one request may take (issue: abuse resistance).")


SECTIONS: tuple[Section, ...] = (SERVER, REDIS, KAFKA, GRPC, JWT, LOGGING, CORS, RBAC, CACHE, RATE_LIMITS, IDEMPOTENCY,
                                 SECURITY, REALTIME, LIMITS, OBSERVABILITY, GRAPHQL)

_ROOT = Section("", {s.name: F(s, doc=s.doc, pending=s.pending) for s in SECTIONS},
                "Gateway configuration.", cls_name="Config")
if TYPE_CHECKING:  # built from the schema at import time; to a type checker, any object
    Config = Any
else:
    Config = _ROOT.cls


# ---------------------------------------------------------------------- engine
# The tree under construction is plain dicts of parsed values; `sources` maps each
# dotted leaf key to "default" | "file:<path>" | "env:<NAME>".

def _origin(source: str) -> str:
    kind, _, where = source.partition(":")
    return f" (from {kind} {where})" if where else f" (from {kind})"


def _show_raw(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _invalid(key: str, v: Any, expected: str, source: str) -> ConfigError:
    return ConfigError(f"{key}: {_show_raw(v)} is not valid (expected {expected}){_origin(source)}")


def _unknown(key: str, where: str, known: Any, source: str) -> ConfigError:
    what = "section" if not where else "key"
    scope = "sections" if not where else f"keys in {where}"
    return ConfigError(f"{key}: unknown {what} (known {scope}: {', '.join(known)}){_origin(source)}")


def _parse(kind: Kind, v: Any, key: str, source: str) -> Any:
    try:
        return kind.parse(v)
    except _Invalid as e:
        raise _invalid(key + e.suffix, v if e.value is _SAME else e.value, e.expected, source) from None


def _defaults(sec: Section, prefix: str, sources: dict) -> dict:
    node: dict = {}
    for name, f in sec.fields.items():
        key, k = prefix + name, f.kind
        if isinstance(k, Section):
            node[name] = _defaults(k, key + ".", sources)
        elif isinstance(k, (SectionMap, Map)):
            node[name] = {}
            if f.default is not REQUIRED:
                default = f.default() if callable(f.default) else f.default
                _apply_field(f, node, name, default, key, "default", sources, replace=True)
        elif f.default is REQUIRED:
            node[name] = REQUIRED
        else:
            node[name] = _parse(k, f.default, key, "default")
            sources[key] = "default"
    return node


def _apply(sec: Section, node: dict, raw: Any, prefix: str, source: str, sources: dict, replace: bool) -> None:
    where = prefix[:-1]
    if raw is None:  # a section with every key commented out
        return
    if not isinstance(raw, Mapping):
        raise _invalid(where, raw, "a mapping", source)
    for name, v in raw.items():
        f = sec.fields.get(name) if isinstance(name, str) else None
        if f is None:
            raise _unknown(f"{prefix}{name}", where, sec.fields, source)
        _apply_field(f, node, name, v, prefix + name, source, sources, replace)


def _apply_field(f: F, node: dict, name: str, v: Any, key: str, source: str, sources: dict, replace: bool) -> None:
    k = f.kind
    if isinstance(k, Section):
        _apply(k, node[name], v, key + ".", source, sources, replace)
    elif isinstance(k, (SectionMap, Map)):
        if not isinstance(v, Mapping):
            raise _invalid(key, v, k.expected, source)
        entries = node[name]
        for n, ev in v.items():
            ekey = f"{key}.{n}"
            known = k.keys if isinstance(k, Map) else None
            if not isinstance(n, str) or not n or (known is not None and n not in known):
                raise _unknown(ekey, key, known or ["any non-empty name"], source)
            if isinstance(k, Map):
                entries[n] = _parse(k.value, ev, ekey, source)
                sources[ekey] = source
                continue
            if replace or n not in entries:  # file replaces a whole entry; env edits one field
                for s in [s for s in sources if s.startswith(ekey + ".")]:
                    del sources[s]
                entries[n] = _defaults(k.section, ekey + ".", sources)
            _apply(k.section, entries[n], ev, ekey + ".", source, sources, replace)
    else:
        node[name] = _parse(k, v, key, source)
        sources[key] = source


def _resolve(sec: Section, tokens: list[str]) -> list[str] | None:
    """Env tokens -> path of field names; names contain '_', so longest match first."""
    for i in range(len(tokens), 0, -1):
        f = sec.fields.get("_".join(tokens[:i]))
        if f is None:
            continue
        name, rest, k = "_".join(tokens[:i]), tokens[i:], f.kind
        if isinstance(k, Section):
            sub = _resolve(k, rest) if rest else None
            if sub:
                return [name, *sub]
        elif isinstance(k, Map):
            if rest and all(rest):
                return [name, "_".join(rest)]
        elif isinstance(k, SectionMap):
            for j in range(1, len(rest)):  # shortest entry name whose remainder is a field
                sub = _resolve(k.section, rest[j:]) if all(rest[:j]) else None
                if sub:
                    return [name, "_".join(rest[:j]), *sub]
        elif not rest:
            return [name]
    return None


def _apply_env(tree: dict, env: Mapping[str, str], sources: dict) -> None:
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX) or var in NON_CONFIG_ENV:
            continue
        tokens = var[len(ENV_PREFIX):].lower().split("_")
        path = _resolve(_ROOT, tokens)
        if path is None:
            sec = next((f.kind for n, f in _ROOT.fields.items() if tokens[:len(n.split("_"))] == n.split("_")), None)
            scope = f"keys in {sec.name}: {', '.join(sec.fields)}" if sec else f"sections: {', '.join(_ROOT.fields)}"
            raise ConfigError(f"{var}: environment variable names no configuration key "
                              f"(expected ERP_<SECTION>_<KEY>; known {scope})")
        raw: Any = env[var]
        for seg in reversed(path):
            raw = {seg: raw}
        _apply(_ROOT, tree, raw, "", f"env:{var}", sources, replace=False)


def _freeze(sec: Section, node: dict, prefix: str, sources: Mapping[str, str]) -> Any:
    vals = {}
    for name, f in sec.fields.items():
        key, k, v = prefix + name, f.kind, node[name]
        if isinstance(k, Section):
            vals[name] = _freeze(k, v, key + ".", sources)
        elif isinstance(k, SectionMap):
            vals[name] = MappingProxyType({n: _freeze(k.section, e, f"{key}.{n}.", sources) for n, e in v.items()})
        elif isinstance(k, Map):
            vals[name] = MappingProxyType(dict(v))
        elif v is REQUIRED:
            raise ConfigError(f"{key}: missing (expected {k.expected})")
        else:
            vals[name] = v
    obj = sec.cls(**vals)
    if sec.validate:
        try:
            sec.validate(obj)
        except ConfigError:
            raise
        except ValueError as e:
            field, sep, rest = str(e).partition(": ")
            if sep and field.split(".")[0] in sec.fields:  # "limit: ..." names a key: say which, and from where
                key, source = prefix + field, sources.get(prefix + field, "default")
                raise ConfigError(f"{key}: {rest}{_origin(source) if source != 'default' else ''}") from None
            raise ConfigError(f"{prefix[:-1] or 'config'}: {e}") from None
    return obj


def _read_yaml(path: str, via: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} not found (from {via})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path!r} cannot be read: {getattr(e, 'strerror', None) or e} "
                          f"(from {via})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config file {path!r}: invalid YAML{at}: {problem}") from None
    expected = f"expected a mapping of sections: {', '.join(_ROOT.fields)}"
    if data is None:
        raise ConfigError(f"config file {path!r} is empty ({expected})")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path!r}: top level is a {type(data).__name__}, not a mapping ({expected})")
    return data


def without_configuration(environ: Mapping[str, str]) -> dict[str, str]:
    """An environment with no gateway configuration in it (no ERP_*, no CONFIG_FILE): what
    a child process gets when it must not inherit a developer's settings."""
    return {k: v for k, v in environ.items() if not k.startswith(ENV_PREFIX) and k != "CONFIG_FILE"}


def load_config(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Defaults < file (``path``, else ``env['CONFIG_FILE']``) < ERP_* environment."""
    env = os.environ if env is None else env
    via = "--config"
    if path is None and env.get("CONFIG_FILE"):
        path, via = env["CONFIG_FILE"], "env CONFIG_FILE"
    sources: dict[str, str] = {}
    tree = _defaults(_ROOT, "", sources)
    if path is not None:
        path = os.fspath(path)
        _apply(_ROOT, tree, _read_yaml(path, via), "", f"file:{path}", sources, replace=True)
    _apply_env(tree, env, sources)
    cfg = _freeze(_ROOT, tree, "", sources)
    # Provenance for describe(); kept off the dataclass fields so equality ignores it.
    object.__setattr__(cfg, "_sources", MappingProxyType(sources))
    return cfg


def pending_keys(cfg: Config) -> list[tuple[str, str, str]]:
    """(dotted key, why it is not acted on yet, source) for every leaf the gateway accepts
    but ignores; a section's reason covers every key in it."""
    sources: Mapping[str, str] = getattr(cfg, "_sources", {})
    out: list[tuple[str, str, str]] = []

    def walk(sec: Section, prefix: str, inherited: str) -> None:
        for name, f in sec.fields.items():
            key, why = prefix + name, f.pending or inherited
            if isinstance(f.kind, Section):
                walk(f.kind, key + ".", why)
            elif why:
                matching = [s for k, s in sources.items() if k == key or k.startswith(key + ".")]
                source = next((s for s in matching if s != "default"), "default")
                out.append((key, why, source))

    walk(_ROOT, "", "")
    return out


def describe(cfg: Config) -> list[tuple[str, str, str]]:
    """(dotted key, display value with secrets masked, source) for every leaf."""
    sources: Mapping[str, str] = getattr(cfg, "_sources", {})
    rows: list[tuple[str, str, str]] = []

    def row(key: str, f: F, text: str) -> None:
        rows.append((key, "***" if f.secret and text else text, sources.get(key, "default")))

    def walk(sec: Section, obj: Any, prefix: str) -> None:
        for name, f in sec.fields.items():
            key, k, v = prefix + name, f.kind, getattr(obj, name)
            if isinstance(k, Section):
                walk(k, v, key + ".")
            elif isinstance(k, (SectionMap, Map)) and not v:
                row(key, f, "{}")
            elif isinstance(k, SectionMap):
                for n, e in v.items():
                    walk(k.section, e, f"{key}.{n}.")
            elif isinstance(k, Map):
                for n, x in v.items():
                    row(f"{key}.{n}", f, k.value.show(x))
            else:
                row(key, f, k.show(v))

    walk(_ROOT, cfg, "")
    return rows
