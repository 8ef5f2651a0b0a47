"""Rate limiting with GCRA, counted atomically in Valkey, with a per-worker fallback.

Why GCRA (the generic cell rate algorithm) rather than a sliding window: it keeps one small
value per (policy, subject), the "theoretical arrival time", so memory does not grow with
the limit as a sliding-window log does, and it is exact where a sliding-window counter
only approximates. It also allows a burst of up to `limit` requests and then spaces them
at `window / limit`, and it yields Remaining, Reset and Retry-After without extra reads.

One check is one EVALSHA of one script, whatever the number of policies on the route: the
script reads the server's clock (so instances with skewed clocks share one budget), admits
the request only if every policy admits it, and a refused request consumes nothing.

While Valkey is unreachable the same algorithm runs in process memory (per worker, so the
effective limit is multiplied by the number of workers and instances). The request-path
client's circuit breaker (runtime.valkey_mux) makes that cheap: while it is open a check
fails at once, and it probes Valkey by itself, so an outage costs no request a timeout after
the first.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

from valkey.exceptions import ValkeyError

from runtime.observability import tracing
from runtime.valkey_mux import ValkeyMux

if TYPE_CHECKING:
    from runtime.security.synced_limits import SyncedLimiter

log = logging.getLogger("gateway.ratelimit")

LOCAL_MAX_KEYS = 100_000  # past this, expired entries are swept on the next check


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    limit: int
    window: float  # seconds
    key: str  # "user" | "ip" | "email_ip"
    # Requests one worker admits between syncs with Valkey (runtime.security.synced_limits); 0: exact.
    allowance: int = 0
    # SCRIPT's ARGV for this policy, (interval, window) in microseconds: computed once, not per check.
    script_args: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Never 0 µs: a zero interval would admit everything and divide by zero in SCRIPT
        # (configuration refuses such policies; this guards policies built in code).
        interval_us = max(1, round(self.interval * 1e6))
        object.__setattr__(self, "script_args", (interval_us, max(interval_us, round(self.window * 1e6))))

    @property
    def interval(self) -> float:
        """Seconds each request adds to the arrival time (the emission interval)."""
        return self.window / self.limit


# Named tuples rather than frozen dataclasses: one of each per request, and a tuple is built
# without a setattr per field.
class Outcome(NamedTuple):
    """One policy's view of one request; times in seconds from now."""

    policy: Policy
    allowed: bool
    remaining: int
    reset: float  # until the whole budget is back
    retry_after: float  # until a refused request would be admitted; 0 when allowed


class Decision(NamedTuple):
    allowed: bool
    outcomes: tuple[Outcome, ...]

    @property
    def tightest(self) -> Outcome:
        """The outcome the RateLimit-* headers report: the policy nearest exhaustion."""
        if len(self.outcomes) == 1:  # most routes: only the default policy
            return self.outcomes[0]
        return min(self.outcomes, key=lambda o: (o.allowed, o.remaining, -o.reset))


def gcra(tat: float | None, now: float, interval: float, window: float) -> tuple[bool, float, int, float, float]:
    """One GCRA step: (allowed, new_tat, remaining, reset, retry_after). Mirrored in SCRIPT."""
    tat = now if tat is None or tat < now else tat
    new_tat = tat + interval
    allow_at = new_tat - window
    if now < allow_at:
        return False, tat, 0, tat - now, allow_at - now
    return True, new_tat, int((now - allow_at) / interval + 1e-9), new_tat - now, 0.0


# KEYS[i] holds one GCRA arrival time in microseconds; ARGV[2i-1], ARGV[2i] are that
# policy's interval and window in microseconds; the last ARGV is 1 to count the request, 0 to
# only look (would it be admitted?). Returns {allowed, then per key: remaining, reset,
# retry_after (microseconds)}. "%.0f" keeps every digit (tostring would round to 14).
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local allowed, out, tats = 1, {0}, {}
for i, key in ipairs(KEYS) do
  local interval, window = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - window
  local n = 3 * i - 1
  if now < allow_at then
    allowed = 0
    out[n], out[n + 1], out[n + 2] = 0, tat - now, allow_at - now
  else
    tats[i] = new_tat
    out[n], out[n + 1], out[n + 2] = math.floor((now - allow_at) / interval), new_tat - now, 0
  end
end
if allowed == 1 and ARGV[2 * #KEYS + 1] ~= '0' then
  for i, key in ipairs(KEYS) do
    redis.call('SET', key, string.format('%.0f', tats[i]), 'PX', math.max(1, math.ceil((tats[i] - now) / 1000)))
  end
end
out[1] = allowed
return out
"""


class LocalLimiter:
    """The same algorithm in this worker's memory, for when Valkey is unreachable."""

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self._tats: dict[str, float] = {}

    def check(self, rules: Sequence[tuple[Policy, str]], commit: bool = True) -> Decision:
        now = self.clock()
        if len(self._tats) > LOCAL_MAX_KEYS:
            self._tats = {k: t for k, t in self._tats.items() if t > now}
        steps = [(key, policy, gcra(self._tats.get(key), now, policy.interval, policy.window)) for policy, key in rules]
        allowed = all(step[0] for _, _, step in steps)
        if allowed and commit:
            for key, _, step in steps:
                self._tats[key] = step[1]
        return Decision(allowed, tuple(Outcome(p, s[0], s[2], s[3], s[4]) for _, p, s in steps))


_SPAN_ATTRIBUTES = {"db.system": "valkey", "db.operation": "EVALSHA"}


class RateLimiter:
    """Checks (policy, key) pairs against Valkey in one round trip; falls back to local.

    Policies with an allowance are counted by `synced` instead (no round trip per request);
    a check that holds both kinds admits only when both do."""

    def __init__(self, valkey: ValkeyMux, local: LocalLimiter | None = None,
                 synced: "SyncedLimiter | None" = None) -> None:
        self.script = valkey.register_script(SCRIPT)
        self.by_slot = getattr(valkey, "by_slot", None)  # a cluster: one script call per slot
        self.local = local or LocalLimiter()
        self.synced = synced
        self.shared = True  # False while the last attempt to reach Valkey failed (counting locally)

    def check_local(self, rules: Sequence[tuple[Policy, str]]) -> Decision | None:
        """`check(rules)` when it needs no round trip (one synced rule within its allowance),
        without a coroutine; else None."""
        if self.synced is not None and len(rules) == 1 and rules[0][0].allowance:
            return self.synced.check_local(*rules[0])
        return None

    async def check(self, rules: Sequence[tuple[Policy, str]], commit: bool = True) -> Decision:
        """Admit (and count, unless `commit` is False: only look) one request against every rule."""
        if self.synced is None or not any(policy.allowance for policy, _ in rules):
            return await self.check_exact(rules, commit)
        synced = [rule for rule in rules if rule[0].allowance]
        decision = await self.synced.check(synced, commit)
        exact = [rule for rule in rules if not rule[0].allowance]
        if not exact or not decision.allowed:
            return decision
        other = await self.check_exact(exact, commit)
        if commit and not other.allowed:
            self.synced.undo(synced)  # a refused request consumes nothing
        return Decision(other.allowed, decision.outcomes + other.outcomes)

    async def check_exact(self, rules: Sequence[tuple[Policy, str]], commit: bool = True) -> Decision:
        """One EVALSHA of SCRIPT (today's per-request check)."""
        args = [a for policy, _ in rules for a in policy.script_args]
        args.append(1 if commit else 0)
        try:
            with tracing.span("valkey EVALSHA rate_limit", tracing.SpanKind.CLIENT, _SPAN_ATTRIBUTES):
                keys = [key for _, key in rules]
                groups = self.by_slot(keys) if self.by_slot is not None and len(keys) > 1 else None
                answer = await (self.script(keys=keys, args=args) if groups is None else self._per_slot(keys, args, groups))
        except (ValkeyError, OSError, asyncio.TimeoutError) as exc:
            if self.shared:
                log.warning("rate limits counted per worker: valkey unavailable", extra={"error": str(exc)[:200]})
                self.shared = False
            return self.local.check(rules, commit)
        if not self.shared:
            log.warning("rate limits shared again: valkey is back")
            self.shared = True
        return _decision(rules, answer)

    async def _per_slot(self, keys: list[str], args: list, groups: list[list[int]]) -> list[int]:
        """A check whose keys lie on several cluster slots: one script call per slot, all in
        the same loop iteration (one write per node), answers merged as one call's. Not atomic
        across slots: when one slot refuses, the others have still counted the request (a
        refused request may spend another policy's budget: never more admitted than allowed)."""
        answers = await asyncio.gather(*(self.script(keys=[keys[i] for i in group],
                                                     args=[a for i in group for a in args[2 * i:2 * i + 2]] + [args[-1]])
                                         for group in groups))
        merged = [1] + [0] * (3 * len(keys))
        for group, answer in zip(groups, answers):
            merged[0] &= int(answer[0])
            for j, i in enumerate(group):
                merged[1 + 3 * i:4 + 3 * i] = answer[1 + 3 * j:4 + 3 * j]
        return merged


def _decision(rules: Sequence[tuple[Policy, str]], answer: list[int]) -> Decision:
    outcomes = []
    for i, (policy, _) in enumerate(rules):
        remaining, reset, retry = answer[1 + 3 * i: 4 + 3 * i]
        outcomes.append(Outcome(policy, retry == 0, int(remaining), reset / 1e6, retry / 1e6))
    return Decision(bool(answer[0]), tuple(outcomes))


def _limit_values(decision: Decision) -> tuple[str, str, str]:
    """RateLimit-Limit, -Remaining and -Reset, from the tightest policy."""
    o = decision.tightest
    return str(o.policy.limit), str(o.remaining), str(math.ceil(o.reset))


def headers(decision: Decision) -> dict[str, str]:
    """RateLimit-* (draft-ietf-httpapi-ratelimit-headers) and, when refused, Retry-After."""
    limit, remaining, reset = _limit_values(decision)
    out = {"RateLimit-Limit": limit, "RateLimit-Remaining": remaining, "RateLimit-Reset": reset}
    if not decision.allowed:
        out["Retry-After"] = str(max(1, math.ceil(max(x.retry_after for x in decision.outcomes))))
    return out


def set_headers(resp: Any, decision: Decision) -> None:
    """The RateLimit-* headers of an admitted request on a Falcon response: `headers()` written
    straight into Falcon's header dict (lower-case names, as Falcon keeps them). Anything
    else with `set_headers` (GraphQL's collected headers) gets `headers()`."""
    answer = getattr(resp, "_headers", None)
    if answer is None:
        resp.set_headers(headers(decision))
        return
    answer["ratelimit-limit"], answer["ratelimit-remaining"], answer["ratelimit-reset"] = _limit_values(decision)
