"""The circuit breaker's state machine, on a fake clock."""

from __future__ import annotations

import pytest

from runtime.backends.breaker import CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


def breaker(clock: Clock, **kw) -> CircuitBreaker:
    return CircuitBreaker(**{"failure_threshold": 3, "cooldown": 5.0, "half_open_probes": 2, **kw}, clock=clock)


def fail(b: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        b.failure(b.admit())


def test_opens_after_threshold_consecutive_failures(clock):
    b = breaker(clock)
    fail(b, 2)
    assert b.state == "closed"
    fail(b, 1)
    assert b.state == "open" and b.opened == 1


def test_a_success_resets_the_count(clock):
    b = breaker(clock)
    fail(b, 2)
    b.success(b.admit())
    fail(b, 2)
    assert b.state == "closed" and b.consecutive_failures == 2


def test_open_fails_fast_with_the_cooldown_left(clock):
    b = breaker(clock)
    fail(b, 3)
    clock.now += 1.5
    with pytest.raises(CircuitOpen) as refused:
        b.admit()
    assert refused.value.retry_after == pytest.approx(3.5)
    assert refused.value.retry_after_header == "4"  # whole seconds, rounded up
    assert b.rejected == 1


def test_half_open_after_cooldown_lets_only_a_few_probes_through(clock):
    b = breaker(clock)
    fail(b, 3)
    clock.now += 5.0
    assert b.state == "half_open"
    assert b.admit() is True and b.admit() is True
    with pytest.raises(CircuitOpen):
        b.admit()  # both probe slots taken


def test_a_successful_probe_closes(clock):
    b = breaker(clock)
    fail(b, 3)
    clock.now += 5.0
    b.success(b.admit())
    assert b.state == "closed"
    assert b.admit() is False  # closed: calls are not probes


def test_a_failed_probe_reopens_for_a_full_cooldown(clock):
    b = breaker(clock)
    fail(b, 3)
    clock.now += 5.0
    b.failure(b.admit())
    assert b.state == "open" and b.opened == 2
    assert b.retry_after() == pytest.approx(5.0)


def test_a_cancelled_probe_frees_its_slot_without_a_verdict(clock):
    b = breaker(clock, half_open_probes=1)
    fail(b, 3)
    clock.now += 5.0
    b.release(b.admit())
    assert b.state == "half_open"
    assert b.admit() is True


def test_a_late_success_from_before_the_trip_does_not_close(clock):
    b = breaker(clock)
    late = b.admit()
    fail(b, 3)
    b.success(late)
    assert b.state == "open"


def test_snapshot_has_state_and_counters(clock):
    b = breaker(clock)
    b.success(b.admit())
    fail(b, 3)
    with pytest.raises(CircuitOpen):
        b.admit()
    assert b.snapshot() == {"state": "open", "consecutive_failures": 3, "successes": 1,
                            "failures": 3, "rejected": 1, "opened": 1}
