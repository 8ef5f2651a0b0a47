"""A cache read made ahead of execution (with the rate-limit check, in one Valkey round trip)
and left in the request's loaders for the resolver that would have made it."""

from __future__ import annotations

from typing import Any


class Failed:
    """The read's load raised: its field reports the error, the rest of the query runs."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def leave(ctx: Any, policy: str, resource: str, outcome: Any) -> None:
    ctx.loaders.memo[("cache", policy, resource)] = outcome


def taken(ctx: Any, policy: str, resource: str) -> Any:
    """What a read-ahead left for this resolver (raising what its load raised), or None."""
    memo = ctx.loaders.memo if ctx.loaders is not None else None
    if not memo:
        return None
    outcome = memo.pop(("cache", policy, resource), None)
    if isinstance(outcome, Failed):
        raise outcome.error
    return outcome
