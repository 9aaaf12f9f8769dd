"""Progress-aware health: is a service that keeps receiving events still getting rid of them?

A service's own /health can say 200 while nothing is written (FAILURE_MODES #10, #14). What it
cannot fake as easily is its counters: if `received` grows while `processed` stays flat for a
whole window, the service is stuck, whatever it says about itself.

Events a service disposes of by design without processing them (`skipped` in its stats: legacy
once new owns an entity, ingestion for events that are neither new's nor shadow's) count as
progress too; otherwise legacy at 100 % would look stuck. A service that is simply idle
(received flat) is healthy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Counters", "ProgressTracker", "counters_of"]


@dataclass(frozen=True)
class Counters:
    received: int
    processed: int
    skipped: int

    @property
    def handled(self) -> int:
        return self.processed + self.skipped


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def counters_of(stats: Any) -> Counters | str:
    """The counters of a /api/v1/stats body, or why they cannot be read."""
    if not isinstance(stats, Mapping):
        return "stats body is not a JSON object"
    received, processed = _count(stats.get("received")), _count(stats.get("processed"))
    if received is None or processed is None:
        return "stats lack integer 'received' and 'processed' counters"
    raw = stats.get("skipped", 0)
    if isinstance(raw, Mapping):  # {reason: count}
        skipped = sum(c for c in (_count(v) for v in raw.values()) if c is not None)
    else:
        skipped = _count(raw) or 0
    return Counters(received=received, processed=processed, skipped=skipped)


class ProgressTracker:
    """Fed one Counters per poll; says when a service has been stuck for the whole window.

    Stuck: since `handled` last moved, `received` has grown, and it has been so for at least
    `window_s` (counted from the first poll that saw the growth, so never early).
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._last: Counters | None = None
        self._baseline_received = 0  # received when handled last moved
        self._stalled_since: float | None = None

    def observe(self, counters: Counters, at: float) -> str | None:
        """Record a poll at monotonic time `at`; the 'no progress' reason when stuck, else None."""
        last = self._last
        restarted = last is not None and (
            counters.received < last.received or counters.handled < last.handled)
        if last is None or restarted or counters.handled != last.handled:
            self._baseline_received = counters.received
            self._stalled_since = None
        elif counters.received > self._baseline_received and self._stalled_since is None:
            self._stalled_since = at
        self._last = counters
        if self._stalled_since is None:
            return None
        stalled_for = at - self._stalled_since
        if stalled_for < self.window_s:
            return None
        skipped = f" (+{counters.skipped} skipped)" if counters.skipped else ""
        return (
            f"no progress: received {self._baseline_received} -> {counters.received} while "
            f"processed stayed at {counters.processed}{skipped} for {stalled_for:.1f} s "
            f"(window {self.window_s:g} s)"
        )
