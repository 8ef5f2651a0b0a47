"""A circuit breaker per backend (per worker): stop calling a backend that is down.

It trips on *consecutive* failures rather than a failure rate over a window. A dead or hung
backend fails every call, so a run of failures finds it as fast as a rate would, with no
minimum volume to wait for at low traffic and no window to tune; a backend that fails only
some calls is left to the retries (within their budget), not cut off. Only transient
server-side failures count (see ``runtime.backends.status.BREAKER_CODES``); an answer such
as NOT_FOUND proves the backend is alive and counts as a success.

closed --threshold failures--> open --cool-down--> half_open --success--> closed
                                 ^------------------- failure ---------------'
"""

from __future__ import annotations

import math
import time
from typing import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitOpen(Exception):
    """The call was refused without reaching the backend; retry after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open, retry after {retry_after:.2f}s")
        self.retry_after = retry_after

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))  # Retry-After is whole seconds


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 5, cooldown: float = 5.0, half_open_probes: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.half_open_probes = half_open_probes
        self.clock = clock
        self._state = CLOSED
        self._opened_at = 0.0
        self._probes = 0  # probes in flight while half-open
        self.consecutive_failures = 0
        # Counters for metrics (monotonic totals).
        self.successes = 0
        self.failures = 0
        self.rejected = 0
        self.opened = 0
        self.on_open: Callable[[], None] | None = None  # told each time the circuit opens (events)

    @property
    def state(self) -> str:
        if self._state == OPEN and self.clock() - self._opened_at >= self.cooldown:
            self._state, self._probes = HALF_OPEN, 0
        return self._state

    def retry_after(self) -> float:
        """Seconds left of the cool-down (0 unless open)."""
        if self.state != OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - self.clock())

    def admit(self) -> bool:
        """Let a call through or raise CircuitOpen. True when the call is a half-open probe;
        the caller must then report its outcome (or `release`) so the probe slot frees up."""
        state = self.state
        if state == CLOSED:
            return False
        if state == HALF_OPEN and self._probes < self.half_open_probes:
            self._probes += 1
            return True
        self.rejected += 1
        raise CircuitOpen(self.retry_after())

    def success(self, probe: bool = False) -> None:
        self.successes += 1
        self.consecutive_failures = 0
        self._end_probe(probe)
        if self._state == HALF_OPEN:
            self._state = CLOSED
        # While open, a late success of a call admitted before the trip changes nothing:
        # only a probe after the cool-down may close the circuit.

    def failure(self, probe: bool = False) -> None:
        self.failures += 1
        self.consecutive_failures += 1
        self._end_probe(probe)
        if self._state == HALF_OPEN or (self._state == CLOSED and self.consecutive_failures >= self.failure_threshold):
            self._trip()

    def release(self, probe: bool) -> None:
        """The call ended with no verdict on the backend (cancelled by our client)."""
        self._end_probe(probe)

    def _end_probe(self, probe: bool) -> None:
        if probe:  # a probe from before a re-trip may end late: never go below zero
            self._probes = max(0, self._probes - 1)

    def _trip(self) -> None:
        self._state, self._opened_at, self._probes = OPEN, self.clock(), 0
        self.opened += 1
        if self.on_open is not None:
            self.on_open()

    def snapshot(self) -> dict[str, int | float | str]:
        """State and counters, for /ready and metrics."""
        return {
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "successes": self.successes,
            "failures": self.failures,
            "rejected": self.rejected,
            "opened": self.opened,
        }
