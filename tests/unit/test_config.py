"""runtime.config: defaults < YAML file < ERP_* env, validation and describe()."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from runtime import config as C
from runtime.config import ConfigError, describe, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "infra" / "config.example.yaml"


def write(tmp_path: Path, text: str, name: str = "gw.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def error(**kw) -> str:
    with pytest.raises(ConfigError) as ei:
        load_config(**kw)
    msg = str(ei.value)
    assert "\n" not in msg, msg
    return msg


# ---------------------------------------------------------------- defaults

def test_defaults_without_file_or_env():
    cfg = load_config(env={})
    assert cfg.server.port == 8080 and cfg.server.host == "0.0.0.0"
    assert cfg.server.read_timeout == 30.0 and cfg.server.shutdown_timeout == 10.0
    assert cfg.server.max_body_bytes == 1_048_576 and cfg.server.trusted_proxies == ()
    assert cfg.redis.key_prefix == "erp:gw:" and cfg.redis.timeout == 1.0
    assert cfg.kafka.brokers == ("localhost:9092",) and cfg.kafka.enabled is False
    assert dict(cfg.grpc.services) == {
        "auth": "localhost:50051", "crm": "localhost:50052",
        "hrm": "localhost:50053", "finance": "localhost:50054",
    }
    assert cfg.jwt.cache_duration == 3600.0 and cfg.jwt.algorithms == ("RS256",)
    assert cfg.jwt.token_cache_size == 10_000 and cfg.jwt.leeway == 10.0
    assert cfg.logging.elasticsearch.url == "" and cfg.logging.elasticsearch.flush_interval == 5.0
    assert cfg.cors.allowed_methods == ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    assert cfg.cors.max_age == 600.0 and cfg.cors.allow_credentials is True
    assert {s for _, _, s in describe(cfg)} == {"default"}


def test_config_is_immutable():
    cfg = load_config(env={})
    assert isinstance(cfg, C.Config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.server.port = 1
    with pytest.raises(TypeError):
        cfg.grpc.services["auth"] = "x:1"
    assert isinstance(cfg.cors.allowed_origins, tuple)


def test_example_yaml_loads_unchanged_with_its_values():
    seed = next((REPO.parent / "shared" / "seed").glob("*.txt"), None)
    if seed is not None:  # the example is the seed README's block, byte for byte
        block = seed.read_text().split("### Key Configuration Sections", 1)[1]
        assert block.split("```yaml\n", 1)[1].split("```", 1)[0] == EXAMPLE.read_text()
    cfg = load_config(EXAMPLE, env={})
    assert cfg.logging.elasticsearch.url == "http://localhost:9200"
    assert cfg.cors.allowed_methods == ("GET", "POST", "PUT", "DELETE", "OPTIONS")  # no PATCH in the file
    assert cfg.grpc.services["finance"] == "localhost:50054" and cfg.grpc.timeout == 30.0
    assert cfg.jwt.issuer == "erp-auth-service" and cfg.redis.password == ""
    src = {k: s for k, _, s in describe(cfg)}
    assert src["cors.allowed_methods"] == f"file:{EXAMPLE}"
    assert src["cors.exposed_headers"] == "default"


# -------------------------------------------------------------- precedence

def test_precedence_default_file_env(tmp_path):
    p = write(tmp_path, "server:\n  port: 9000\n  host: 127.0.0.1\n")
    cfg = load_config(p, env={"ERP_SERVER_PORT": "9100"})
    assert (cfg.server.port, cfg.server.host, cfg.server.workers) == (9100, "127.0.0.1", 1)
    src = {k: s for k, _, s in describe(cfg)}
    assert src["server.port"] == "env:ERP_SERVER_PORT"
    assert src["server.host"] == f"file:{p}"
    assert src["server.workers"] == "default"


def test_config_file_env_and_explicit_path(tmp_path):
    a = write(tmp_path, "server: {port: 1111}\n", "a.yaml")
    b = write(tmp_path, "server: {port: 2222}\n", "b.yaml")
    assert load_config(env={"CONFIG_FILE": str(a)}).server.port == 1111
    assert load_config(b, env={"CONFIG_FILE": str(a)}).server.port == 2222  # --config wins
    assert load_config(env={"CONFIG_FILE": ""}).server.port == 8080


def test_env_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("ERP_REDIS_DB", "5")
    monkeypatch.delenv("CONFIG_FILE", raising=False)
    assert load_config().redis.db == 5


# ----------------------------------------------------------- parsing by type

@pytest.mark.parametrize("var, value, get, expected", [
    ("ERP_SERVER_HOST", "10.0.0.1", lambda c: c.server.host, "10.0.0.1"),
    ("ERP_SERVER_PORT", "8443", lambda c: c.server.port, 8443),
    ("ERP_SERVER_READ_TIMEOUT", "500ms", lambda c: c.server.read_timeout, 0.5),
    ("ERP_SERVER_REQUEST_TIMEOUT", "1h30m", lambda c: c.server.request_timeout, 5400.0),
    ("ERP_JWT_CACHE_DURATION", "2d", lambda c: c.jwt.cache_duration, 172800.0),
    ("ERP_SERVER_WRITE_TIMEOUT", "45", lambda c: c.server.write_timeout, 45.0),
    ("ERP_SERVER_TLS_MIN_VERSION", "1.3", lambda c: c.server.tls_min_version, "1.3"),
    ("ERP_SERVER_TLS_ENABLED", "0", lambda c: c.server.tls_enabled, False),
    ("ERP_KAFKA_ENABLED", "TRUE", lambda c: c.kafka.enabled, True),
    ("ERP_KAFKA_ENABLED", "no", lambda c: c.kafka.enabled, False),
    ("ERP_LOGGING_LEVEL", "DEBUG", lambda c: c.logging.level, "debug"),
    ("ERP_JWT_ALGORITHMS", "rs256, ES256", lambda c: c.jwt.algorithms, ("RS256", "ES256")),
    ("ERP_JWT_JWKS_URL", "https://auth/jwks", lambda c: c.jwt.jwks_url, "https://auth/jwks"),
    ("ERP_JWT_UNKNOWN_KID_REFETCH_INTERVAL", "1m", lambda c: c.jwt.unknown_kid_refetch_interval, 60.0),
    ("ERP_KAFKA_BROKERS", "a:9092, b:9093,", lambda c: c.kafka.brokers, ("a:9092", "b:9093")),
    ("ERP_CORS_ALLOWED_HEADERS", "", lambda c: c.cors.allowed_headers, ()),
    ("ERP_SERVER_TRUSTED_PROXIES", "10.0.0.0/8,::1", lambda c: c.server.trusted_proxies, ("10.0.0.0/8", "::1")),
    ("ERP_GRPC_SERVICES_AUTH", "auth.svc:7000", lambda c: c.grpc.services["auth"], "auth.svc:7000"),
    ("ERP_LOGGING_ELASTICSEARCH_URL", "http://es:9200", lambda c: c.logging.elasticsearch.url, "http://es:9200"),
    ("ERP_LOGGING_ELASTICSEARCH_FLUSH_INTERVAL", "250ms", lambda c: c.logging.elasticsearch.flush_interval, 0.25),
])
def test_env_values_parse(var, value, get, expected):
    assert get(load_config(env={var: value})) == expected


@pytest.mark.parametrize("yaml_text, get, expected", [
    ("server: {read_timeout: 15}", lambda c: c.server.read_timeout, 15.0),   # bare number = seconds
    ("server: {read_timeout: 1.5}", lambda c: c.server.read_timeout, 1.5),
    ("server: {tls_min_version: 1.3}", lambda c: c.server.tls_min_version, "1.3"),
    ("kafka: {brokers: [a:1, b:2]}", lambda c: c.kafka.brokers, ("a:1", "b:2")),
    ("kafka: {brokers: 'a:1,b:2'}", lambda c: c.kafka.brokers, ("a:1", "b:2")),
    ("redis: {password: 12345}", lambda c: c.redis.password, "12345"),
    ("redis: {password: }", lambda c: c.redis.password, ""),
    ("grpc: {services: {crm: 'crm:1'}}", lambda c: dict(c.grpc.services)["crm"], "crm:1"),
    ("grpc: {services: {crm: 'crm:1'}}", lambda c: c.grpc.services["auth"], "localhost:50051"),  # merged
    ("logging: {elasticsearch: {batch_size: 7}}", lambda c: c.logging.elasticsearch.batch_size, 7),
    ("logging: {elasticsearch: {batch_size: 7}}", lambda c: c.logging.elasticsearch.index, "erp-api-gateway"),
    ("server:\n", lambda c: c.server.port, 8080),  # section with every key commented out
])
def test_yaml_values_parse(tmp_path, yaml_text, get, expected):
    assert get(load_config(write(tmp_path, yaml_text), env={})) == expected


@pytest.mark.parametrize("text, seconds", [
    ("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("1h30m", 5400.0),
    ("2d", 172800.0), ("1m500ms", 60.5), ("10", 10.0), ("0.25", 0.25),
])
def test_parse_and_format_duration(text, seconds):
    assert C.parse_duration(text) == seconds
    assert C.parse_duration(C.format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["1 hour", "", "5x", "-5s", "h", "1h 30m", "ms"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        C.parse_duration(text)


# ------------------------------------------------------------- bad values

@pytest.mark.parametrize("var, value, expected_msg", [
    ("ERP_SERVER_PORT", "abc",
     "server.port: 'abc' is not valid (expected an integer between 1 and 65535) (from env ERP_SERVER_PORT)"),
    ("ERP_SERVER_PORT", "70000", "server.port: '70000' is not valid (expected an integer between 1 and 65535)"),
    ("ERP_SERVER_WORKERS", "0", "server.workers: '0' is not valid (expected an integer between 1 and 64)"),
    ("ERP_SERVER_MAX_BODY_BYTES", "0", "server.max_body_bytes: '0' is not valid (expected an integer of at least 1)"),
    ("ERP_JWT_CACHE_DURATION", "1 hour",
     "jwt.cache_duration: '1 hour' is not valid (expected a duration like 30s, 5m, 1h, 500ms"),
    ("ERP_JWT_LEEWAY", "1h", "jwt.leeway: '1h' is not valid (expected a duration like 30s, 5m, 1h, 500ms (at most 5m))"),
    ("ERP_SERVER_TLS_ENABLED", "maybe",
     "server.tls_enabled: 'maybe' is not valid (expected a boolean (true/false, yes/no, 1/0))"),
    ("ERP_LOGGING_LEVEL", "verbose",
     "logging.level: 'verbose' is not valid (expected one of debug, info, warning, error)"),
    ("ERP_JWT_ALGORITHMS", "RS256,none",
     "jwt.algorithms[1]: 'none' is not valid (expected one of RS256, RS384, RS512, PS256, ES256)"),
    ("ERP_JWT_ALGORITHMS", "HS256", "jwt.algorithms[0]: 'HS256' is not valid"),
    ("ERP_JWT_ALGORITHMS", "", "jwt.algorithms: '' is not valid (expected a non-empty list"),
    ("ERP_JWT_JWKS_URL", "ftp://x", "jwt.jwks_url: 'ftp://x' is not valid (expected an http(s) URL)"),
    ("ERP_SERVER_TRUSTED_PROXIES", "10.0.0.1,proxy.local",
     "server.trusted_proxies[1]: 'proxy.local' is not valid (expected an IP address or CIDR)"),
    ("ERP_GRPC_SERVICES_AUTH", "localhost",
     "grpc.services.auth: 'localhost' is not valid (expected a host:port address like localhost:50051)"),
    ("ERP_GRPC_SERVICES_BILLING", "b:1",
     "grpc.services.billing: unknown key (known keys in grpc.services: auth, crm, finance, hrm) "
     "(from env ERP_GRPC_SERVICES_BILLING)"),
    ("ERP_KAFKA_BROKERS", "a:1,b", "kafka.brokers[1]: 'b' is not valid (expected a host:port address"),
])
def test_bad_env_value_message(var, value, expected_msg):
    assert expected_msg in error(env={var: value})


@pytest.mark.parametrize("yaml_text, expected_msg", [
    ("server: {port: true}", "server.port: True is not valid (expected an integer between 1 and 65535)"),
    ("server: {port: 80.5}", "server.port: 80.5 is not valid"),
    ("server: {prot: 1}", "server.prot: unknown key (known keys in server: host, port, read_timeout,"),
    ("serverr: {port: 1}", "serverr: unknown section (known sections: server, redis, kafka, grpc, jwt, logging, cors"),
    ("logging: {elasticsearch: {uri: x}}", "logging.elasticsearch.uri: unknown key (known keys in logging.elasticsearch: url,"),
    ("grpc: {services: {billing: 'b:1'}}", "grpc.services.billing: unknown key (known keys in grpc.services: auth,"),
    ("grpc: {services: [a]}", "grpc.services: ['a'] is not valid (expected a mapping of name to a host:port"),
    ("server: 8080", "server: 8080 is not valid (expected a mapping)"),
    ("cors: {allowed_methods: [GET, FETCH]}", "cors.allowed_methods[1]: 'FETCH' is not valid (expected one of GET,"),
    ("cors: {allowed_origins: {a: 1}}", "cors.allowed_origins: {'a': 1} is not valid (expected a list"),
    ("server: {read_timeout: -1}", "server.read_timeout: -1 is not valid (expected a duration like"),
    ("server: {read_timeout: 0}", "server.read_timeout: 0 is not valid (expected a duration like 30s, 5m, 1h, 500ms (at least 1ms, at most 1m))"),
    ("server: {tls_enabled: 2}", "server.tls_enabled: 2 is not valid (expected a boolean"),
])
def test_bad_file_value_message(tmp_path, yaml_text, expected_msg):
    p = write(tmp_path, yaml_text)
    msg = error(path=p, env={})
    assert expected_msg in msg
    assert msg.endswith(f"(from file {p})")


def test_section_validate_hook_cors_credentials_with_wildcard():
    msg = error(env={"ERP_CORS_ALLOWED_ORIGINS": "*"})
    assert msg.startswith("cors: allowed_origins '*' cannot be combined with allow_credentials true")
    cfg = load_config(env={"ERP_CORS_ALLOWED_ORIGINS": "*", "ERP_CORS_ALLOW_CREDENTIALS": "false"})
    assert cfg.cors.allowed_origins == ("*",)


# ------------------------------------------------------------ env names

@pytest.mark.parametrize("var, hint", [
    ("ERP_SERVER_PROT", "known keys in server: host, port,"),
    ("ERP_SERVERR_PORT", "known sections: server, redis,"),
    ("ERP_LOGGING_ELASTICSEARCH", "known keys in logging: level, format, stream, elasticsearch"),
    ("ERP_GRPC_SERVICES", "known keys in grpc"),
    ("ERP_", "known sections"),
])
def test_unknown_env_variable(var, hint):
    msg = error(env={var: "1"})
    assert msg.startswith(f"{var}: environment variable names no configuration key")
    assert hint in msg


def test_allow_listed_and_foreign_env_are_ignored(monkeypatch):
    monkeypatch.setattr(C, "NON_CONFIG_ENV", frozenset({"ERP_RELEASE"}))
    assert load_config(env={"ERP_RELEASE": "x", "PATH": "/bin", "erp_server_port": "x"}).server.port == 8080
    assert isinstance(C.NON_CONFIG_ENV, frozenset)


# -------------------------------------------------------------- files

def test_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert error(path=missing, env={}) == f"config file {str(missing)!r} not found (from --config)"
    assert error(env={"CONFIG_FILE": str(missing)}).endswith("not found (from env CONFIG_FILE)")


@pytest.mark.parametrize("text, expected_msg", [
    ("", "is empty (expected a mapping of sections: server, redis,"),
    ("# only a comment\n", "is empty"),
    ("- server\n- redis\n", "top level is a list, not a mapping"),
    ("just a string\n", "top level is a str, not a mapping"),
    ("server: [unclosed\n", "invalid YAML at line"),
])
def test_bad_file_shape(tmp_path, text, expected_msg):
    p = write(tmp_path, text)
    msg = error(path=p, env={})
    assert str(p) in msg and expected_msg in msg


# ------------------------------------------------------------ describe

def test_describe_masks_secrets_and_reports_sources(tmp_path):
    p = write(tmp_path, "redis: {host: r1}\n")
    rows = describe(load_config(p, env={"ERP_REDIS_PASSWORD": "hunter2"}))
    by_key = {k: (v, s) for k, v, s in rows}
    assert by_key["redis.password"] == ("***", "env:ERP_REDIS_PASSWORD")
    assert "hunter2" not in repr(rows)
    assert by_key["redis.host"] == ("r1", f"file:{p}")
    assert by_key["server.read_timeout"] == ("30s", "default")
    assert by_key["cors.allowed_origins"] == ("http://localhost:3000", "default")
    assert by_key["grpc.services.auth"] == ("localhost:50051", "default")
    assert by_key["server.tls_enabled"] == ("false", "default")
    assert all(len(r) == 3 and all(isinstance(x, str) for x in r) for r in rows)


def test_describe_empty_secret_is_shown_empty():
    assert ("redis.password", "", "default") in describe(load_config(env={}))


# ---------------------------------------------- map of sub-sections (future sections)

def _no_cycles(rbac):
    def visit(role, seen):
        if role in seen:
            raise ValueError(f"roles: cycle {' -> '.join([*seen, role])} (expected an acyclic hierarchy)")
        for parent in rbac.roles[role].parents if role in rbac.roles else ():
            visit(parent, [*seen, role])
    for r in rbac.roles:
        visit(r, [])


RATE_LIMIT = C.Section("rate_limit", {
    "limit": C.F(C.Int(min=1), doc="Requests per window."),  # REQUIRED
    "window": C.F(C.Duration(min=0.001), "1m", "Window length."),
    "key": C.F(C.Enum("ip", "email_ip", "user"), "ip", "What is counted."),
})
ROLE = C.Section("role", {
    "parents": C.F(C.List(), [], "Inherited roles."),
    "permissions": C.F(C.List(), [], "Granted permissions."),
    "token": C.F(C.Str(), "", "A secret inside a map entry.", secret=True),
})
EXTRA = (
    C.Section("rate_limits", {"rules": C.F(C.SectionMap(RATE_LIMIT), {
        "login": {"limit": 10, "window": "1m", "key": "email_ip"},
        "api": {"limit": 100},
    }, "Named limits.")}),
    C.Section("rbac", {"roles": C.F(C.SectionMap(ROLE), {
        "admin": {"parents": ["super_admin"], "permissions": ["crm.*:*"]},
        "super_admin": {"permissions": ["*"]},
    }, "Role hierarchy.")}, validate=_no_cycles),
)


@pytest.fixture
def extended(monkeypatch):
    sections = (*C.SECTIONS, *EXTRA)
    root = C.Section("", {s.name: C.F(s, doc=s.doc) for s in sections}, cls_name="Config")
    monkeypatch.setattr(C, "_ROOT", root)
    return root


def test_section_map_defaults(extended):
    cfg = load_config(env={})
    login = cfg.rate_limits.rules["login"]
    assert (login.limit, login.window, login.key) == (10, 60.0, "email_ip")
    assert cfg.rate_limits.rules["api"].window == 60.0  # sub-section default fills the gap
    assert cfg.rbac.roles["admin"].parents == ("super_admin",)
    with pytest.raises(TypeError):
        cfg.rbac.roles["x"] = None


def test_section_map_file_adds_and_replaces_entries(extended, tmp_path):
    p = write(tmp_path, "rate_limits:\n  rules:\n    login: {limit: 3}\n    search: {limit: 50, window: 10s}\n")
    cfg = load_config(p, env={})
    rules = cfg.rate_limits.rules
    assert set(rules) == {"login", "api", "search"}
    assert (rules["login"].limit, rules["login"].key) == (3, "ip")  # replaced whole, not merged
    assert rules["search"].window == 10.0
    src = {k: s for k, _, s in describe(cfg)}
    assert src["rate_limits.rules.login.limit"] == f"file:{p}"
    assert src["rate_limits.rules.login.key"] == "default"


def test_section_map_env_edits_one_field(extended):
    cfg = load_config(env={
        "ERP_RATE_LIMITS_RULES_LOGIN_WINDOW": "5m",
        "ERP_RBAC_ROLES_SUPER_ADMIN_PERMISSIONS": "a:*,b:*",
        "ERP_RBAC_ROLES_NEW_ROLE_PARENTS": "admin",
        "ERP_RBAC_ROLES_ADMIN_TOKEN": "s3cret",
    })
    assert cfg.rate_limits.rules["login"].window == 300.0
    assert cfg.rate_limits.rules["login"].limit == 10  # untouched field keeps its value
    assert cfg.rbac.roles["super_admin"].permissions == ("a:*", "b:*")
    assert cfg.rbac.roles["new_role"].parents == ("admin",)
    by_key = {k: (v, s) for k, v, s in describe(cfg)}
    assert by_key["rbac.roles.admin.token"] == ("***", "env:ERP_RBAC_ROLES_ADMIN_TOKEN")
    assert by_key["rate_limits.rules.login.window"] == ("5m", "env:ERP_RATE_LIMITS_RULES_LOGIN_WINDOW")


@pytest.mark.parametrize("env, yaml_text, expected_msg", [
    ({"ERP_RATE_LIMITS_RULES_LOGIN_KEY": "mac"}, None,
     "rate_limits.rules.login.key: 'mac' is not valid (expected one of ip, email_ip, user) "
     "(from env ERP_RATE_LIMITS_RULES_LOGIN_KEY)"),
    ({"ERP_RATE_LIMITS_RULES_NEW_WINDOW": "1s"}, None,
     "rate_limits.rules.new.limit: missing (expected an integer of at least 1)"),
    ({}, "rate_limits: {rules: {x: {limt: 1}}}", "rate_limits.rules.x.limt: unknown key (known keys in rate_limits.rules.x: limit, window, key)"),
    ({}, "rbac: {roles: {super_admin: {parents: [admin]}}}",
     "rbac.roles: cycle admin -> super_admin -> admin (expected an acyclic hierarchy)"),
    ({"ERP_RBAC_ROLES_ADMIN": "x"}, None, "ERP_RBAC_ROLES_ADMIN: environment variable names no configuration key"),
])
def test_section_map_errors(extended, tmp_path, env, yaml_text, expected_msg):
    path = write(tmp_path, yaml_text) if yaml_text else None
    assert expected_msg in error(path=path, env=env)


def test_message_shape_is_one_line_with_key_value_expectation():
    msg = error(env={"ERP_SERVER_PORT": "abc"})
    assert re.fullmatch(r"server\.port: 'abc' is not valid \(expected .+\) \(from env ERP_SERVER_PORT\)", msg)


# ------------------------------------------------ what takes effect, domains, policies

def test_a_rate_limit_finer_than_a_microsecond_stops_start_up_naming_the_key():
    msg = error(env={"ERP_RATE_LIMITS_POLICIES_USER_LIMIT": "1000000000"})
    assert msg == ("rate_limits.policies.user.limit: 1000000000 per 1m is more than one request per "
                   "microsecond (expected at most 60000000 per 1m) (from env ERP_RATE_LIMITS_POLICIES_USER_LIMIT)")
    assert load_config(env={"ERP_RATE_LIMITS_POLICIES_USER_LIMIT": "60000000"}).rate_limits.policies["user"].limit


def test_pending_keys_are_reported_with_their_source(tmp_path):
    cfg = load_config(write(tmp_path, "server:\n  write_timeout: 45s\n"), env={})
    pending = {key: (why, source) for key, why, source in C.pending_keys(cfg)}
    assert pending["server.write_timeout"][0].startswith("no effect")
    assert pending["server.write_timeout"][1] == f"file:{tmp_path / 'gw.yaml'}"
    from_env = C.pending_keys(load_config(env={"ERP_SERVER_WRITE_TIMEOUT": "5s"}))
    assert [(key, source) for key, _, source in from_env] == [("server.write_timeout", "env:ERP_SERVER_WRITE_TIMEOUT")]
    assert "logging.elasticsearch.url" not in pending  # log shipping is built
    # Keys that take effect are never listed.
    assert not {"server.max_body_bytes", "jwt.leeway", "redis.host", "redis.max_retries", "cache.enabled",
                "kafka.enabled", "kafka.brokers"} & set(pending)


def test_pending_keys_set_on_purpose_are_logged_at_start_up(caplog):
    from runtime.middleware import _log_pending

    with caplog.at_level("INFO", logger="gateway"):
        _log_pending(load_config(env={"ERP_SERVER_WRITE_TIMEOUT": "5s"}))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["configuration keys set but not acted on yet: server.write_timeout (env:ERP_SERVER_WRITE_TIMEOUT)"]


def test_backend_services_and_cache_policies_come_from_the_domain_declarations():
    from runtime.domains import declared

    domains = declared()
    cfg = load_config(env={})
    assert dict(cfg.grpc.services) == {d.service: d.address for d in domains.values()}
    assert {n for d in domains.values() for n in d.cache_policies} == set(cfg.cache.policies)
    assert [n for n, d in domains.items() if d.required] == ["auth"]


def test_a_new_domain_is_one_declaration(tmp_path, monkeypatch):
    # A package with a DOMAIN is all it takes: discovery finds it, no runtime file changes.
    from runtime.domains import declared

    pkg = tmp_path / "more_handlers"
    (pkg / "billing").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "billing" / "__init__.py").write_text(
        "from runtime.domains import Domain\n"
        "DOMAIN = Domain('billing', object, address='billing:7000', cache_policies={'bills': {'ttl': '5m'}})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = declared("more_handlers")
    assert list(found) == ["billing"] and found["billing"].address == "billing:7000"


def test_the_auth_contract_lives_in_proto_not_in_runtime():
    # The emulator and the gateway share the trailer and the role catalogue through proto/.
    from emulator.services import roles
    from proto.erp.auth.v1 import contract

    assert roles.ROLE_NAMES == tuple(contract.ROLES)
    assert set(load_config(env={}).rbac.roles) == set(contract.ROLES)
    for path in (REPO / "emulator").rglob("*.py"):
        assert "runtime.auth" not in path.read_text(), f"{path} imports the gateway's auth runtime"


def test_a_metrics_token_is_long_or_absent_and_never_shown():
    with pytest.raises(ConfigError, match=r"observability\.metrics\.token: 'short' is not valid \(expected empty, or a token of at least 16"):
        load_config(env={"ERP_OBSERVABILITY_METRICS_TOKEN": "short"})
    with pytest.raises(ConfigError, match=r"observability\.metrics\.allowed_networks\[0\]: 'intranet'"):
        load_config(env={"ERP_OBSERVABILITY_METRICS_ALLOWED_NETWORKS": "intranet"})
    cfg = load_config(env={"ERP_OBSERVABILITY_METRICS_TOKEN": "s3cret-scrape-token-0123"})
    shown = {key: value for key, value, _ in describe(cfg)}
    assert shown["observability.metrics.token"] == "***" and shown["observability.metrics.allowed_networks"] == ""
