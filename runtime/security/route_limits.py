"""Which rate-limit policies one route counts against, and the pipeline stage that checks them.

Every route counts against `user` when the caller is signed in, else `anonymous` (per
client IP); `rate_limit="name"` (or a tuple of names) adds named policies, `rate_limit=False`
exempts the route. The default policy and the named ones that need no body are checked in
one call (one Valkey round trip) right after authentication, before the body is read, so a
refused client never gets to send one. A policy keyed on the body (`email_ip`: login's
email with the address; `domain`: registration) is checked after body validation, in a
second call. A request that fails authentication spends the anonymous budget.

Everything that can be wrong with a route's declaration is found at start-up.
"""

from __future__ import annotations

import copy
import hashlib
import weakref
from typing import TYPE_CHECKING, Any

import falcon.asgi

from runtime.endpoint import RegistryError, Route
from runtime.errors import RateLimited
from runtime.observability import metrics
from runtime.security.ratelimit import Decision, Policy, headers, set_headers
from runtime.security.synced_limits import allowance

if TYPE_CHECKING:
    from runtime.context import Context


def _policy(name: str, config: Any) -> Policy:
    p = config.policies[name]
    spend = allowance(p.limit, config.fleet_workers) if p.mode == "synced" else 0
    return Policy(name, p.limit, p.window, p.key, spend)


# Policy keys read from the validated body: checked after it, in a second round trip.
BODY_KEYS = {"email_ip": "email", "domain": "domain"}


class RouteLimits:
    def __init__(self, route: Route, config: Any, key_prefix: str = "") -> None:
        """`config` is the `rate_limits` section. Raises RegistryError naming the route."""
        self.route = route
        self.prefix = key_prefix + "rl:"
        self._load(config)

    def _load(self, config: Any) -> None:
        route = self.route
        user = _policy("user", config)
        anonymous = _policy("anonymous", config)
        # Machine clients get their own budget (`service`) when one is configured.
        service = _policy("service", config) if "service" in config.policies else user
        rate_limit: Any = route.rate_limit  # a name, names, None (the defaults) or False (for_route)
        names: tuple[str, ...] = (rate_limit,) if isinstance(rate_limit, str) else tuple(rate_limit or ())
        where = f"{route.method} {route.path} ({route.name})"
        named = []
        for name in names:
            if name not in config.policies:
                raise RegistryError(f"{where}: rate_limit {name!r} is not a policy in rate_limits.policies "
                                    f"(known: {', '.join(config.policies)})")
            policy = _policy(name, config)
            if policy.key == "user" and route.auth == "none":
                raise RegistryError(f"{where}: rate_limit {name!r} counts per user but the route has no authentication")
            field = BODY_KEYS.get(policy.key)
            if field is not None and (route.body is None or field not in route.body.fields):
                raise RegistryError(f"{where}: rate_limit {name!r} counts per {field} but the body has no `{field}` field")
            named.append(policy)
        # Before the body: the default policy and named ones that need no body, one round trip;
        # so a client is refused before it may send (or trickle) a body. After it: the rest.
        before = tuple(p for p in named if p.key not in BODY_KEYS)
        after = tuple(p for p in named if p.key in BODY_KEYS)
        if getattr(self, "needs_body", bool(after)) != bool(after):
            raise RegistryError(f"{where}: rate_limit {names!r} may not change what it is keyed on without a restart")
        # Assigned together, after every check: a refused reload leaves the old policies whole.
        self.user, self.anonymous, self.service = user, anonymous, service
        self.before, self.after, self.needs_body = before, after, bool(after)
        # What `enforce` checks for each kind of caller: its default policy, then the named ones.
        self.user_first, self.anonymous_first, self.service_first = (
            (default, *(p for p in before if p.name != default.name)) for default in (user, anonymous, service))

    def check(self, config: Any) -> None:
        """Raise RegistryError if `config` (the whole configuration) cannot serve this route."""
        copy.copy(self)._load(config.rate_limits)

    def reload(self, config: Any) -> None:
        """Take the rate-limit policies of `config` (checked with `check` first)."""
        self._load(config.rate_limits)

    @property
    def named(self) -> Policy | None:
        """The first named policy (most routes have at most one)."""
        return (self.before + self.after)[0] if self.before or self.after else None

    @classmethod
    def for_route(cls, route: Route, config: Any) -> "RouteLimits | None":
        if route.rate_limit is False or not config.rate_limits.enabled:
            return None
        return cls(route, config.rate_limits, config.redis.key_prefix)

    def _subject(self, kind: str, ctx: "Context") -> str:
        if kind == "user" and ctx.principal is not None:  # a person or a service account
            return "u:" + ctx.principal.user_id
        if kind == "email_ip":
            email = str((ctx.body or {}).get("email", "")).strip().lower()
            # Hashed: no addresses in Valkey keys, and a bounded key length.
            return f"e:{hashlib.sha256(email.encode()).hexdigest()[:32]}:{ctx.client_ip}"
        if kind == "domain":
            domain = str((ctx.body or {}).get("domain", "")).strip().lower()
            return "d:" + hashlib.sha256(domain.encode()).hexdigest()[:32]
        return "ip:" + ctx.client_ip

    def _rule(self, policy: Policy, ctx: "Context") -> tuple[Policy, str]:
        return policy, f"{self.prefix}{policy.name}:{self._subject(policy.key, ctx)}"

    async def _check(self, resp: falcon.asgi.Response, ctx: "Context", policies: tuple[Policy, ...]) -> None:
        limiter = ctx.resources.limiter
        assert limiter is not None  # for_route() builds no RouteLimits while rate limits are off
        rules = [self._rule(p, ctx) for p in policies]
        self._conclude(resp, policies, limiter.check_local(rules) or await limiter.check(rules))

    def _conclude(self, resp: falcon.asgi.Response, policies: tuple[Policy, ...], decision: Decision) -> None:
        if not decision.allowed:
            refused = next((o.policy.name for o in decision.outcomes if not o.allowed), policies[0].name)
            metrics.RATE_LIMITED.labels(refused).inc()
            raise RateLimited(headers=headers(decision))
        set_headers(resp, decision)

    def _default(self, ctx: "Context") -> tuple[Policy, ...]:
        """The default policy (user, service or anonymous) and the named ones that need no body."""
        principal = ctx.principal
        return self.anonymous_first if principal is None else self.service_first if principal.is_service \
            else self.user_first

    def enforce_local(self, resp: falcon.asgi.Response, ctx: "Context") -> bool:
        """`enforce` when this worker can decide alone (runtime.security.synced_limits), without
        a coroutine: True once decided (admitted, or RateLimited raised); False: await `enforce`."""
        policies = self._default(ctx)
        limiter = ctx.resources.limiter
        if len(policies) != 1 or limiter is None:
            return False
        decision = limiter.check_local((self._rule(policies[0], ctx),))
        if decision is None:
            return False
        self._conclude(resp, policies, decision)
        return True

    async def enforce(self, resp: falcon.asgi.Response, ctx: "Context") -> None:
        """The default policy (user, service or anonymous) and the named ones that need no body."""
        await self._check(resp, ctx, self._default(ctx))

    async def enforce_body(self, resp: falcon.asgi.Response, ctx: "Context") -> None:
        """The named policies keyed on the validated body (login's email, register's domain)."""
        if self.after:
            await self._check(resp, ctx, self.after)

    async def enforce_anonymous(self, resp: falcon.asgi.Response, ctx: "Context") -> None:
        """A request that failed authentication is anonymous: it spends the address's budget."""
        await self._check(resp, ctx, (self.anonymous,))


class _Derived:
    """One worker's derived limits, and the configuration new ones are built from (the
    start-up one, then each reloaded one)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.built: dict[tuple, RouteLimits | None] = {}


_DERIVED: "weakref.WeakKeyDictionary[Any, _Derived]" = weakref.WeakKeyDictionary()


def _derived(resources: Any) -> _Derived:
    found = _DERIVED.get(resources)
    if found is None:
        found = _DERIVED[resources] = _Derived(resources.config)
    return found


def derived(resources: Any, route: Route) -> RouteLimits | None:
    """The limits of a route variant the pipeline does not run itself (GraphQL's default
    budget for /graphql, its `login` mutation's), built once per worker (`resources`) and
    reloaded with every route's when the policies change (runtime.reload)."""
    worker = _derived(resources)
    key = (route.method, route.path, route.rate_limit, route.auth, route.body.name if route.body else None)
    if key not in worker.built:
        worker.built[key] = RouteLimits.for_route(route, worker.config)
    return worker.built[key]


def derived_limits(resources: Any) -> list[RouteLimits]:
    """Every `derived` RouteLimits of a worker, to check against a new configuration."""
    return [limits for limits in _derived(resources).built.values() if limits is not None]


def reload_derived(resources: Any, config: Any) -> None:
    """Take a new configuration (checked first with `derived_limits`): those built already
    and those built from now on."""
    worker = _derived(resources)
    for limits in derived_limits(resources):
        limits.reload(config)
    worker.config = config


class AddressBudget:
    """The anonymous budget outside any route: unknown paths and wrong methods (404, 405)
    spend it too, so that no answer to an anonymous address comes for free."""

    def __init__(self, config: Any) -> None:
        self.policy = _policy("anonymous", config.rate_limits) if config.rate_limits.enabled else None
        self.prefix = config.redis.key_prefix + "rl:anonymous:ip:"

    def check(self, config: Any) -> None:
        """Hot reload (runtime.reload): the `anonymous` policy is always there (checked at load)."""

    def reload(self, config: Any) -> None:
        if self.policy is not None:
            self.policy = _policy("anonymous", config.rate_limits)

    async def enforce(self, limiter: Any, client_ip: str) -> None:
        if self.policy is None or limiter is None:
            return
        decision = await limiter.check([(self.policy, self.prefix + client_ip)])
        if not decision.allowed:
            raise RateLimited(headers=headers(decision))
