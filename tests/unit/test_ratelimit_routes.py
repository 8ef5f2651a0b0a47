"""Rate-limit declarations are checked at start-up; the client IP behind proxies (pure)."""

from __future__ import annotations

import pytest

from runtime.config import load_config
from runtime.endpoint import RegistryError, discover, endpoint
from runtime.schema import EMAIL, Body
from runtime.security.client_ip import ClientIp
from runtime.security.route_limits import RouteLimits

CONFIG = load_config(env={})


def route(**options):
    async def handler(req, ctx):
        return None

    return endpoint("POST", "/x", **options)(handler).__endpoint__


def test_every_shipped_route_declares_a_known_policy_and_system_routes_are_exempt():
    routes = {r.path: r for r in discover()}
    for r in routes.values():
        RouteLimits.for_route(r, CONFIG)  # raises for a bad declaration
    assert RouteLimits.for_route(routes["/health"], CONFIG) is None
    assert RouteLimits.for_route(routes["/ready"], CONFIG) is None
    login = RouteLimits.for_route(routes["/api/v1/auth/login"], CONFIG)
    assert login.named.name == "login" and login.needs_body
    me = RouteLimits.for_route(routes["/api/v1/auth/me"], CONFIG)
    assert me.named is None and not me.needs_body


def test_an_unknown_policy_stops_start_up_naming_the_route():
    with pytest.raises(RegistryError, match=r"POST /x .*'nope' is not a policy .*known: user, anonymous, login"):
        RouteLimits.for_route(route(rate_limit="nope"), CONFIG)


def test_a_per_user_policy_needs_authentication_and_a_per_email_one_an_email_field():
    with pytest.raises(RegistryError, match="no authentication"):
        RouteLimits.for_route(route(auth=False, rate_limit="user"), CONFIG)
    with pytest.raises(RegistryError, match="no `email` field"):
        RouteLimits.for_route(route(auth=False, rate_limit="login"), CONFIG)
    ok = RouteLimits.for_route(route(auth=False, rate_limit="login", body=Body("B", {"email": EMAIL})), CONFIG)
    assert ok.needs_body


def test_disabled_limits_or_an_exempt_route_check_nothing_and_true_is_not_a_policy():
    off = load_config(env={"ERP_RATE_LIMITS_ENABLED": "false"})
    assert RouteLimits.for_route(route(), off) is None
    assert RouteLimits.for_route(route(rate_limit=False), CONFIG) is None
    with pytest.raises(ValueError, match="rate_limit is a policy name"):
        route(rate_limit=True)


@pytest.mark.parametrize("env, message", [
    ({"ERP_RATE_LIMITS_POLICIES_ANONYMOUS_KEY": "user"}, "policies.anonymous.key must be 'ip'"),
    ({"ERP_RATE_LIMITS_POLICIES_LOGIN_KEY": "mac"}, "rate_limits.policies.login.key: 'mac' is not valid"),
    ({"ERP_RATE_LIMITS_POLICIES_SEARCH_WINDOW": "1m"}, "rate_limits.policies.search.limit: missing"),
])
def test_policy_configuration_errors(env, message):
    from runtime.config import ConfigError

    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(env=env)


# ------------------------------------------------------------------ client IP

PROXIES = ClientIp(["10.0.0.0/8", "127.0.0.1"])


@pytest.mark.parametrize("peer, xff, expected", [
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # untrusted peer: its header is ignored
    ("10.0.0.2", None, "10.0.0.2"),  # a trusted proxy with no header is itself the client
    ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
    ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.7", "198.51.100.1"),  # right-most untrusted
    ("127.0.0.1", "10.1.1.1, 10.2.2.2", "10.1.1.1"),  # all proxies: the left-most
    ("10.0.0.2", "evil, 198.51.100.1", "198.51.100.1"),
    ("10.0.0.2", "198.51.100.1, not-an-ip", "10.0.0.2"),  # garbage a proxy of ours never wrote
    ("10.0.0.2", "2001:db8::1", "2001:db8::1"),
    ("::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1"),  # IPv4-mapped peer
])
def test_client_ip_trusts_forwarded_for_only_from_configured_proxies(peer, xff, expected):
    assert PROXIES.resolve(peer, xff) == expected


def test_without_trusted_proxies_the_peer_is_the_client():
    assert ClientIp([]).resolve("127.0.0.1", "198.51.100.1") == "127.0.0.1"


def test_register_counts_per_address_before_the_body_and_per_domain_after_it():
    routes = {r.path: r for r in discover()}
    register = RouteLimits.for_route(routes["/api/v1/auth/register"], CONFIG)
    assert [p.name for p in register.before] == ["register"]
    assert [p.name for p in register.after] == ["register_domain"] and register.needs_body
    login = RouteLimits.for_route(routes["/api/v1/auth/login"], CONFIG)
    assert login.before == () and [p.name for p in login.after] == ["login"]


def test_a_per_domain_policy_needs_a_domain_field():
    with pytest.raises(RegistryError, match=r"counts per domain but the body has no `domain` field"):
        RouteLimits.for_route(route(auth=False, body=Body("B", {"email": EMAIL}), rate_limit=("register_domain",)), CONFIG)


def test_rate_limit_takes_a_tuple_of_names_and_refuses_an_empty_one():
    with pytest.raises(ValueError, match="a policy name or a tuple of them"):
        route(rate_limit=())
