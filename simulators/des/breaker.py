"""The circuit breaker of pipeline/common/breaker.py on simulated time.

Same states and rules (``failure_threshold`` consecutive failed attempts open it; after
``reset_timeout`` one probe is let through; its success closes it, its failure re-opens it for a
full cool-down; a probe whose caller vanished frees the slot after one more cool-down). The
model keeps its own copy rather than importing the service's code (simulators import the
pipeline's data contracts only); ``tests/des/test_breaker.py`` drives both with the same call
sequence and asserts the same answers.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Breaker", "backoff_delay"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def backoff_delay(attempt: int, base: float, cap: float, uniform: Callable[[float, float], float]
                  ) -> float:
    """Full jitter, as ``pipeline.common.httpclient.backoff_delay``."""
    return uniform(0.0, min(cap, base * 2.0 ** min(attempt, 62)))


class Breaker:
    __slots__ = ("failure_threshold", "reset_timeout", "_clock", "_state", "_failures",
                 "_opened_at", "_probe_at", "on_change")

    def __init__(self, failure_threshold: int, reset_timeout: float, clock: Callable[[], float],
                 on_change: Callable[[str], None] | None = None) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_at: float | None = None
        self.on_change = on_change

    @property
    def state(self) -> str:
        if self._state == OPEN and self._clock() - self._opened_at >= self.reset_timeout:
            self._set(HALF_OPEN)
        return self._state

    @property
    def is_open(self) -> bool:
        """The ``cutover_breaker_open`` gauge: 1 while not closed."""
        return self.state != CLOSED

    def retry_after(self) -> float:
        state = self.state
        now = self._clock()
        if state == OPEN:
            return max(0.0, self._opened_at + self.reset_timeout - now)
        if state == HALF_OPEN and self._probe_in_flight(now):
            assert self._probe_at is not None
            return max(0.0, self._probe_at + self.reset_timeout - now)
        return 0.0

    def allow(self) -> bool:
        state = self.state
        if state == CLOSED:
            return True
        if state == OPEN:
            return False
        now = self._clock()
        if self._probe_in_flight(now):
            return False
        self._probe_at = now
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._probe_at = None
        if self._state != CLOSED:
            self._set(CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        state = self.state
        if state == HALF_OPEN or (state == CLOSED and self._failures >= self.failure_threshold):
            self._opened_at = self._clock()
            self._probe_at = None
            self._set(OPEN)

    def _probe_in_flight(self, now: float) -> bool:
        return self._probe_at is not None and now - self._probe_at < self.reset_timeout

    def _set(self, new: str) -> None:
        old, self._state = self._state, new
        if new != HALF_OPEN:
            self._probe_at = None
        if old != new and self.on_change is not None:
            self.on_change(new)
