"""When a failed backend call may be tried again, and how long to wait first.

- Only idempotent calls, decided by the RPC's name: reads (Get*, List*, BatchGet*, Check*)
  and health checks. A write is never retried: the backend may have applied it already.
- Only on UNAVAILABLE: the call most likely never reached a servicer (connection refused
  or reset, server draining). DEADLINE_EXCEEDED is *not* retried even with budget left: a
  backend too slow for a whole timeout is overloaded, a second try doubles its load at the
  worst moment, and the caller has already waited one full timeout.
- Full-jitter exponential backoff (AWS architecture blog, "Exponential Backoff And Jitter"),
  never sleeping past the deadline.
- A retry budget per backend (Finagle's RetryBudget, Envoy's retry_budget): every call
  deposits `ratio` of a token, every retry spends one, and the balance is capped at `floor`.
  So during an outage retries are at most `ratio` of calls plus `floor`, and a quiet
  gateway still has `floor` retries in hand for its first failures.
"""

from __future__ import annotations

import random

import grpc

IDEMPOTENT_PREFIXES = ("Get", "List", "BatchGet", "Check")
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})


def is_idempotent(method: str) -> bool:
    return method.startswith(IDEMPOTENT_PREFIXES)


def backoff(attempt: int, base: float, cap: float, rand: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (1-based): uniform in [0, min(cap, base * 2**(attempt-1))]."""
    return (rand or random).uniform(0.0, min(cap, base * 2 ** (attempt - 1)))


class RetryBudget:
    def __init__(self, ratio: float = 0.2, floor: int = 10) -> None:
        self.ratio = ratio
        self.capacity = max(1.0, float(floor))
        self.balance = self.capacity
        self.spent = 0  # retries granted, for metrics
        self.denied = 0  # retries refused for want of budget

    def deposit(self) -> None:
        """One call was made (first attempts only; retries earn nothing)."""
        self.balance = min(self.capacity, self.balance + self.ratio)

    def withdraw(self) -> bool:
        """May one more retry be made?"""
        if self.balance >= 1.0:
            self.balance -= 1.0
            self.spent += 1
            return True
        self.denied += 1
        return False
