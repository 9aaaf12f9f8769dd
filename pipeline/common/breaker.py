"""Circuit breaker: stop hammering a neighbour that is failing, probe it again after a cool-down.

The breaker only decides whether a call may be *attempted*. It never owns or drops data: a
caller refused by the breaker keeps its events (in its durable outbox) and tries again later.
That is the whole difference with FAILURE_MODES.md #8 ("circuit breaker drops while open").

States:
- closed: calls flow; `failure_threshold` consecutive failures open the breaker.
- open: calls are refused until `reset_timeout` seconds have passed since it opened.
- half_open: one probe call at a time is let through; its success closes the breaker, its
  failure opens it again for another full cool-down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


#: Called as on_change(old, new) on every transition: the hook for metrics and logs.
StateChangeHook = Callable[[BreakerState, BreakerState], None]


class CircuitBreaker:
    """Consecutive-failure breaker with a monotonic clock (injectable, so tests need no sleeps)."""

    def __init__(
        self,
        failure_threshold: int,
        reset_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        on_change: StateChangeHook | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if reset_timeout <= 0:
            raise ValueError("reset_timeout must be > 0")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.on_change = on_change
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        # When the half-open probe was let through; None when no probe is in flight.
        self._probe_started_at: float | None = None

    @property
    def state(self) -> BreakerState:
        # The open -> half_open transition is driven by time, not by a call, so it is evaluated
        # lazily whenever anyone looks (a metrics scrape sees half_open as soon as it is true).
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.reset_timeout
        ):
            self._transition(BreakerState.HALF_OPEN)
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    def retry_after(self) -> float:
        """Seconds until the breaker will let a call through (0 when it would now)."""
        state = self.state
        now = self._clock()
        if state is BreakerState.OPEN:
            return max(0.0, self._opened_at + self.reset_timeout - now)
        if state is BreakerState.HALF_OPEN and self._probe_in_flight(now):
            assert self._probe_started_at is not None
            return max(0.0, self._probe_started_at + self.reset_timeout - now)
        return 0.0

    def allow(self) -> bool:
        """May a call be attempted now? In half_open, True only for the single probe."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        now = self._clock()
        if self._probe_in_flight(now):
            return False
        self._probe_started_at = now
        return True

    def record_success(self) -> None:
        self._consecutive_failures = 0
        self._probe_started_at = None
        if self._state is not BreakerState.CLOSED:
            self._transition(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._consecutive_failures += 1
        state = self.state
        if state is BreakerState.HALF_OPEN or (
            state is BreakerState.CLOSED and self._consecutive_failures >= self.failure_threshold
        ):
            self._open()
        # Already open: a late failure from a call let through before it opened changes nothing;
        # extending the cool-down here would let stragglers keep a recovered neighbour shunned.

    def _probe_in_flight(self, now: float) -> bool:
        # A probe whose caller vanished (cancelled task, never recorded) must not wedge the
        # breaker in half_open forever: after one more cool-down another probe may go.
        return (
            self._probe_started_at is not None
            and now - self._probe_started_at < self.reset_timeout
        )

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._probe_started_at = None
        self._transition(BreakerState.OPEN)

    def _transition(self, new: BreakerState) -> None:
        old = self._state
        self._state = new
        if new is not BreakerState.HALF_OPEN:
            self._probe_started_at = None
        if old is not new and self.on_change is not None:
            self.on_change(old, new)
