"""Rate limits without a Valkey round trip per request (`rate_limits.policies.*.mode: synced`).

Each worker runs GCRA (runtime.security.ratelimit) on its own copy of a key's arrival time
and reconciles with Valkey in the background, like Kong's `sync_rate`: every
`rate_limits.sync_interval` it pushes the requests it admitted since the last sync, every
such key in one script call (the script adds them to the shared arrival time,
unconditionally: they were served), and takes back the shared time, which holds every other
worker's pushes. A worker admits at most
`allowance` requests of one key between syncs; the next one waits for a sync (one round
trip) instead. The first request of a key in a worker also waits for one.

The bound: a worker's view lacks at most what the other workers admitted and have not yet
pushed, at most `allowance` each, so across the fleet at most `fleet_workers x allowance`
requests more than the exact limiter would admit (`allowance` is sized so that this is at
most 10% of the limit; a policy where that would leave an allowance under 2 stays exact).
RateLimit-* headers come from the same local view: truthful to within that bound.

While Valkey is unreachable, a failed sync forgets the unpushed count and the worker goes
on counting locally, as the exact limiter's fallback does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Sequence

from valkey.exceptions import ValkeyError

from runtime.observability import tracing
from runtime.security.ratelimit import Decision, Outcome, Policy, gcra

if TYPE_CHECKING:
    from runtime.valkey_mux import ValkeyMux

log = logging.getLogger("gateway.ratelimit")

# KEYS[i]: one GCRA arrival time (µs, as SCRIPT keeps it); ARGV[3i-2..3i]: its interval µs,
# window µs, and the requests admitted since the last push. Returns, per key, the arrival time
# after them in µs from now (>= 0). One call syncs every due key of a worker.
PUSH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local n = tonumber(ARGV[3 * i])
  if n > 0 then
    tat = tat + n * tonumber(ARGV[3 * i - 2])
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
  end
  out[i] = tat - now
end
return out
"""
BATCH = 500  # keys per PUSH call
_SPAN_ATTRIBUTES = {"db.system": "valkey", "db.operation": "EVALSHA"}
_NO_SPAN = contextlib.nullcontext()

SHARE_OF_LIMIT = 0.10  # the fleet's overshoot may be at most this share of a policy's limit
MIN_ALLOWANCE = 2  # below this a synced policy would sync on every request: exact instead


def allowance(limit: int, fleet_workers: int) -> int:
    """Requests one worker may admit between syncs; 0 means the policy stays exact."""
    per_worker = int(limit * SHARE_OF_LIMIT / fleet_workers)
    return per_worker if per_worker >= MIN_ALLOWANCE else 0


class _Key:
    __slots__ = ("tat", "pending", "policy", "sync", "touched", "fresh")

    def __init__(self, policy: Policy) -> None:
        self.tat = 0.0  # local monotonic seconds
        self.pending = 0  # admitted here, not yet pushed
        self.policy = policy
        self.sync: asyncio.Future | None = None  # the sync under way
        self.touched = True  # checked since the last background round
        self.fresh = True  # not synced yet: its first request waits for the shared time


class SyncedLimiter:
    """One worker's local allowances, reconciled with Valkey every `interval` seconds."""

    def __init__(self, valkey: "ValkeyMux", interval: float, clock=time.monotonic) -> None:
        self.push = valkey.register_script(PUSH)
        self.by_slot = getattr(valkey, "by_slot", None)  # a cluster: one PUSH per slot
        self.interval = interval
        self.clock = clock
        self.keys: dict[str, _Key] = {}
        self.shared = True  # False while the last sync failed (counting locally)
        self._loop_task: asyncio.Task | None = None
        self.syncs = 0  # round trips made (for tests and the bench)

    def check_local(self, policy: Policy, key: str) -> Decision | None:
        """The usual case, without a coroutine: one rule whose key this worker has synced and
        whose allowance is not spent, admitted (and counted) from local state; None when a
        round trip is due (then `check`)."""
        state = self.keys.get(key)
        if state is None or self._loop_task is None or (
                self.shared and (state.fresh or state.pending >= policy.allowance)):
            return None
        state.policy = policy
        state.touched = True
        allowed, tat, remaining, reset, retry_after = gcra(state.tat, self.clock(), policy.interval, policy.window)
        if allowed:
            state.tat = tat
            state.pending += 1
        return Decision(allowed, (Outcome(policy, allowed, remaining, reset, retry_after),))

    async def check(self, rules: Sequence[tuple[Policy, str]], commit: bool = True) -> Decision:
        """Admit (and count, unless `commit` is False) against every rule, from local state."""
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._run())
        states = []
        for policy, key in rules:
            state = self.keys.get(key)
            if state is None:
                state = self.keys[key] = _Key(policy)
            # New here, or its allowance is spent: reconcile first (one round trip).
            while self.shared and (state.fresh or state.pending >= policy.allowance):
                await self._sync(key, state)
            state.policy = policy
            state.touched = True
            states.append(state)
        now = self.clock()
        steps = [gcra(state.tat, now, policy.interval, policy.window) for state, (policy, _) in zip(states, rules)]
        allowed = all(step[0] for step in steps)
        if allowed and commit:
            for state, step in zip(states, steps):
                state.tat = step[1]
                state.pending += 1
        return Decision(allowed, tuple(Outcome(p, s[0], s[2], s[3], s[4]) for (p, _), s in zip(rules, steps)))

    def undo(self, rules: Sequence[tuple[Policy, str]]) -> None:
        """Give back one admitted request (another policy of the same check refused it)."""
        for policy, key in rules:
            state = self.keys.get(key)
            if state is not None and state.pending > 0:
                state.pending -= 1
                state.tat -= policy.interval

    def _sync(self, key: str, state: _Key) -> asyncio.Future:
        """Push this key's pending count and take the shared arrival time (one at a time per key)."""
        sync = state.sync if state.sync is not None else self._start([(key, state)], traced=True)
        return asyncio.shield(sync)

    def _start(self, batch: list[tuple[str, _Key]], traced: bool = False) -> asyncio.Future:
        """`traced`: a request waits for it, so it is a span of that request's trace (the
        background rounds are not: they would start a trace of their own every interval)."""
        future = asyncio.ensure_future(self._push(batch, traced))
        for _, state in batch:
            state.sync = future
        return future

    async def _push(self, batch: list[tuple[str, _Key]], traced: bool = False) -> None:
        sent = [(state.pending, state.policy) for _, state in batch]
        for _, state in batch:
            state.fresh = False
        args = [a for pending, policy in sent for a in (*policy.script_args, pending)]
        try:
            with tracing.span("valkey EVALSHA rate_limit sync", tracing.SpanKind.CLIENT, _SPAN_ATTRIBUTES) \
                    if traced else _NO_SPAN:
                ahead = await self.push(keys=[key for key, _ in batch], args=args)
        except (ValkeyError, OSError, asyncio.TimeoutError) as exc:
            if self.shared:
                log.warning("rate limits counted per worker: valkey unavailable", extra={"error": str(exc)[:200]})
                self.shared = False
            for _, state in batch:
                state.pending = 0  # forgotten, as the exact limiter's fallback never shares its counts
                if state.tat == 0.0:
                    state.tat = self.clock()
            return
        finally:
            for _, state in batch:
                state.sync = None
        if not self.shared:
            log.warning("rate limits shared again: valkey is back")
            self.shared = True
        self.syncs += 1
        now = self.clock()
        for (_, state), (pending, policy), ahead_us in zip(batch, sent, ahead):
            state.pending -= pending  # what was admitted meanwhile stays pending, on top of the shared time
            state.tat = now + ahead_us / 1e6 + state.pending * policy.interval

    async def _run(self) -> None:
        """Every `interval`: push every key with admissions not yet pushed; forget idle keys."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sync_all()
            except Exception:  # never let the loop die: the next round tries again
                log.exception("rate-limit sync failed")

    async def sync_all(self) -> None:
        now = self.clock()
        due = []
        for key, state in list(self.keys.items()):
            if state.sync is not None:
                continue
            if state.pending:
                due.append((key, state))
            elif not state.touched and state.tat < now:  # idle and its budget is whole again
                del self.keys[key]
            state.touched = False
        if due:
            groups = self.by_slot([key for key, _ in due]) if self.by_slot is not None else None
            parts = [due] if groups is None else [[due[i] for i in group] for group in groups]
            runs = [self._start(part[i:i + BATCH]) for part in parts for i in range(0, len(part), BATCH)]
            await asyncio.gather(*runs, return_exceptions=True)

    async def aclose(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except asyncio.CancelledError:
                pass
            self._loop_task = None
        if any(s.pending for s in self.keys.values()):  # what this worker admitted still counts for the others
            await self.sync_all()
