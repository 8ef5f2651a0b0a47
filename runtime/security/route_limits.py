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

import hashlib
from typing import TYPE_CHECKING, Any

import falcon.asgi

from runtime.endpoint import RegistryError, Route
from runtime.errors import RateLimited
from runtime.security.ratelimit import Policy, headers

if TYPE_CHECKING:
    from runtime.context import Context


def _policy(name: str, config: Any) -> Policy:
    p = config.policies[name]
    return Policy(name, p.limit, p.window, p.key)


# Policy keys read from the validated body: checked after it, in a second round trip.
BODY_KEYS = {"email_ip": "email", "domain": "domain"}


class RouteLimits:
    def __init__(self, route: Route, config: Any, key_prefix: str = "") -> None:
        """`config` is the `rate_limits` section. Raises RegistryError naming the route."""
        self.prefix = key_prefix + "rl:"
        self.user = _policy("user", config)
        self.anonymous = _policy("anonymous", config)
        names = (route.rate_limit,) if isinstance(route.rate_limit, str) else tuple(route.rate_limit or ())
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
                noun = "email" if field == "email" else field
                raise RegistryError(f"{where}: rate_limit {name!r} counts per {noun} but the body has no `{field}` field")
            named.append(policy)
        # Before the body: the default policy and named ones that need no body, one round trip;
        # so a client is refused before it may send (or trickle) a body. After it: the rest.
        self.before = tuple(p for p in named if p.key not in BODY_KEYS)
        self.after = tuple(p for p in named if p.key in BODY_KEYS)
        self.needs_body = bool(self.after)

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
        if kind == "user" and ctx.principal is not None:
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
        decision = await ctx.resources.limiter.check([self._rule(p, ctx) for p in policies])
        answer = headers(decision)
        if not decision.allowed:
            raise RateLimited(headers=answer)
        resp.set_headers(answer)

    async def enforce(self, resp: falcon.asgi.Response, ctx: "Context") -> None:
        """The default policy (user, else anonymous) and the named ones that need no body."""
        default = self.user if ctx.principal is not None else self.anonymous
        await self._check(resp, ctx, (default, *(p for p in self.before if p.name != default.name)))

    async def enforce_body(self, resp: falcon.asgi.Response, ctx: "Context") -> None:
        """The named policies keyed on the validated body (login's email, register's domain)."""
        if self.after:
            await self._check(resp, ctx, self.after)

    async def enforce_anonymous(self, resp: falcon.asgi.Response, ctx: "Context") -> None:
        """A request that failed authentication is anonymous: it spends the address's budget."""
        await self._check(resp, ctx, (self.anonymous,))


class AddressBudget:
    """The anonymous budget outside any route: unknown paths and wrong methods (404, 405)
    spend it too, so that no answer to an anonymous address comes for free."""

    def __init__(self, config: Any) -> None:
        self.policy = _policy("anonymous", config.rate_limits) if config.rate_limits.enabled else None
        self.prefix = config.redis.key_prefix + "rl:anonymous:ip:"

    async def enforce(self, limiter: Any, client_ip: str) -> None:
        if self.policy is None or limiter is None:
            return
        decision = await limiter.check([(self.policy, self.prefix + client_ip)])
        if not decision.allowed:
            raise RateLimited(headers=headers(decision))
