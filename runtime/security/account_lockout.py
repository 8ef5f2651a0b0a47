"""A budget of failed sign-ins per account, across every client address.

Login's own limit counts attempts per email and client IP; an attacker with many addresses
(a botnet, a proxy pool) stays under it for each one while guessing one account's password
from all of them. This budget counts failed sign-ins per email alone (`security.login_failures`,
default 50 per 15 minutes, GCRA like every other limit, shared by every instance through
Valkey): once spent, every sign-in to that account is refused with 429 before the password
is even checked, until the budget refills.

It is keyed by the email as typed, whether or not an account has it, and the auth service
answers a wrong password and an unknown email alike, so the answers (the 429, its envelope
and headers) never tell who has an account. The failure that spends the budget is reported
as a security event. The trade-off of any lockout: a stranger can keep a known address
locked; the budget is large enough that a person typing a wrong password never meets it.
"""

from __future__ import annotations

import hashlib

from runtime.errors import RateLimited
from runtime.security.events import security_event
from runtime.security.ratelimit import Policy, RateLimiter, headers


class AccountLockout:
    def __init__(self, limiter: RateLimiter, limit: int, window: float, key_prefix: str = "") -> None:
        self.limiter = limiter
        self.policy = Policy("login_failures", limit, window, "email")
        self.prefix = key_prefix + "rl:login_failures:"
        self.refused = 0  # sign-ins refused because their account's budget was spent

    def _rules(self, email: str) -> list[tuple[Policy, str]]:
        return [(self.policy, self.prefix + _account(email))]

    async def check(self, email: str) -> None:
        """Before the password is checked: RateLimited while this account's budget is spent."""
        decision = await self.limiter.check(self._rules(email), commit=False)
        if not decision.allowed:
            self.refused += 1
            raise RateLimited(headers=headers(decision))

    async def failed(self, email: str, client_ip: str) -> None:
        """A sign-in to `email` failed: spend one from its budget; report the one that empties it."""
        decision = await self.limiter.check(self._rules(email))
        outcome = decision.outcomes[0]
        if decision.allowed and outcome.remaining == 0:
            security_event("login.account_locked", account=_account(email), client_ip=client_ip,
                           failures=self.policy.limit, window_seconds=self.policy.window,
                           locked_for_seconds=round(outcome.reset - self.policy.window + self.policy.interval, 1))


def _account(email: str) -> str:
    """Hashed: no addresses in Valkey keys or event logs, and a bounded key length."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
