"""Which rate-limit policies one route counts against, and the pipeline stage that checks them.

Every route counts against `user` when the caller is signed in, else `anonymous` (per
client IP); `rate_limit="name"` adds a named policy, `rate_limit=False` exempts the route.
All of a route's policies are checked in one call (one Valkey round trip). A policy keyed
on the body (`email_ip`) needs the validated body, so on such a route the whole check runs
after body validation instead of after authentication.

Everything that can be wrong with a route's declaration is found at start-up.
"""

from __future__ import annotations

import copy
import hashlib
from typing import TYPE_CHECKING, Any

import falcon.asgi

from runtime.endpoint import RegistryError, Route
from runtime.errors import RateLimited
from runtime.security.ratelimit import Policy, headers
from runtime.security.synced_limits import allowance

if TYPE_CHECKING:
    from runtime.context import Context


def _policy(name: str, config: Any) -> Policy:
    p = config.policies[name]
    spend = allowance(p.limit, config.fleet_workers) if p.mode == "synced" else 0
    return Policy(name, p.limit, p.window, p.key, spend)


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
        named: Policy | None = None
        name = route.rate_limit
        where = f"{route.method} {route.path} ({route.name})"
        if isinstance(name, str):
            if name not in config.policies:
                raise RegistryError(f"{where}: rate_limit {name!r} is not a policy in rate_limits.policies "
                                    f"(known: {', '.join(config.policies)})")
            named = _policy(name, config)
            if named.key == "user" and route.auth == "none":
                raise RegistryError(f"{where}: rate_limit {name!r} counts per user but the route has no authentication")
            if named.key == "email_ip" and (route.body is None or "email" not in route.body.fields):
                raise RegistryError(f"{where}: rate_limit {name!r} counts per email but the body has no `email` field")
            if hasattr(self, "needs_body") and self.needs_body != (named.key == "email_ip"):
                raise RegistryError(f"{where}: rate_limit {name!r} may not change what it is keyed on without a restart")
        # Assigned together, after every check: a refused reload leaves the old policies whole.
        self.user, self.anonymous, self.service, self.named = user, anonymous, service, named
        self.needs_body = named is not None and named.key == "email_ip"

    def check(self, config: Any) -> None:
        """Raise RegistryError if `config` (the whole configuration) cannot serve this route."""
        copy.copy(self)._load(config.rate_limits)

    def reload(self, config: Any) -> None:
        """Take the rate-limit policies of `config` (checked with `check` first)."""
        self._load(config.rate_limits)

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
        return "ip:" + ctx.client_ip

    async def enforce(self, resp: falcon.asgi.Response, ctx: "Context") -> None:
        prefix = self.prefix
        principal = ctx.principal
        default = self.anonymous if principal is None else self.service if principal.is_service else self.user
        rules = [(default, f"{prefix}{default.name}:{self._subject(default.key, ctx)}")]
        if self.named is not None and self.named.name != default.name:
            rules.append((self.named, f"{prefix}{self.named.name}:{self._subject(self.named.key, ctx)}"))
        decision = await ctx.resources.limiter.check(rules)
        answer = headers(decision)
        if not decision.allowed:
            raise RateLimited(headers=answer)
        resp.set_headers(answer)
