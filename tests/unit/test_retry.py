"""Retry policy: which calls, how long to wait, and the budget that caps retries."""

from __future__ import annotations

import random

import grpc
import pytest

from runtime.backends.retry import RETRYABLE_CODES, RetryBudget, backoff, is_idempotent


@pytest.mark.parametrize("method", ["GetCustomer", "ListInvoices", "BatchGetUsers", "Check"])
def test_reads_are_idempotent(method):
    assert is_idempotent(method)


@pytest.mark.parametrize("method", ["CreateCustomer", "UpdateDeal", "DeleteAccount", "Authenticate",
                                    "RefreshToken", "RevokeToken", "Register", "RotateSigningKey"])
def test_writes_are_not(method):
    assert not is_idempotent(method)


def test_only_unavailable_is_retried():
    assert RETRYABLE_CODES == {grpc.StatusCode.UNAVAILABLE}


def test_backoff_is_full_jitter_under_an_exponential_cap():
    rand = random.Random(7)
    for attempt, ceiling in ((1, 0.05), (2, 0.1), (3, 0.2), (4, 0.4), (8, 1.0), (30, 1.0)):
        delays = [backoff(attempt, 0.05, 1.0, rand) for _ in range(500)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.9 and min(delays) < ceiling * 0.1  # the whole range is used


def test_the_floor_is_in_hand_from_the_start():
    budget = RetryBudget(ratio=0.2, floor=3)
    assert [budget.withdraw() for _ in range(4)] == [True, True, True, False]
    assert budget.spent == 3 and budget.denied == 1


def test_retries_are_capped_at_ratio_of_calls_plus_floor():
    budget = RetryBudget(ratio=0.2, floor=5)
    granted = 0
    for _ in range(1000):  # every call fails and wants every retry it can get
        budget.deposit()
        while budget.withdraw():
            granted += 1
    assert granted <= 1000 * 0.2 + 5
    assert granted >= 1000 * 0.2 - 1  # and the ratio is really available


def test_a_healthy_period_does_not_bank_an_unbounded_burst():
    budget = RetryBudget(ratio=0.2, floor=5)
    for _ in range(10_000):
        budget.deposit()
    assert sum(budget.withdraw() for _ in range(100)) == 5
