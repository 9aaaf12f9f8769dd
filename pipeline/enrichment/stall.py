"""When is the enrichment service unable to do its job? When storage has been unreachable and
the outbox growing for longer than a limit (weather trouble alone only degrades it).

`StallMonitor` is fed samples of the forwarder's counters (a background tick) and decides from
progress, not from a status flag: a forwarder that keeps acking batches is fine however many
retries it needed; one that has acked nothing since its first failure, while events keep
arriving, is stuck (FAILURE_MODES.md #10: health must follow progress).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["StallMonitor", "StallState"]


@dataclass(frozen=True, slots=True)
class StallState:
    reachable: bool
    unreachable_for_s: float  # 0 when reachable
    growth: int  # outbox growth since storage became unreachable
    stalled: bool


class StallMonitor:
    def __init__(self, limit_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_s = limit_s
        self._clock = clock
        self._forwarded = 0
        self._failures = 0
        self._since: float | None = None  # storage unreachable since (monotonic)
        self._depth_at_start = 0
        self._depth = 0

    def observe(self, *, forwarded: int, failures: int, depth: int) -> None:
        """``forwarded``: events acked so far; ``failures``: failed or breaker-refused attempts."""
        progressed = forwarded > self._forwarded
        failed = failures > self._failures
        self._forwarded, self._failures, self._depth = forwarded, failures, depth
        if progressed or depth == 0:
            self._since = None
        elif failed and self._since is None:
            self._since = self._clock()
            self._depth_at_start = depth

    def state(self) -> StallState:
        if self._since is None:
            return StallState(True, 0.0, 0, False)
        down_for = self._clock() - self._since
        growth = max(0, self._depth - self._depth_at_start)
        return StallState(False, down_for, growth, down_for > self.limit_s and growth > 0)
