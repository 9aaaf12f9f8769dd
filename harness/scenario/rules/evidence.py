"""What the rules read, and nothing more: the runner and the simulator each implement it.

The runner's implementation reads the live monitor (scraped counters, points read back from
InfluxDB) and the fake Home Assistant's ledger; the simulator's reads its model's books.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from .measures import error_rate


class WindowEvidence(Protocol):
    """The evidence over one stretch of the run (a trigger's window, a gated step's hold)."""

    @property
    def start_s(self) -> float: ...

    @property
    def end_s(self) -> float: ...

    @property
    def new_error_rate(self) -> float:
        """Failed or refused handlings per event received by the new pipeline."""
        ...

    @property
    def stalled_seconds(self) -> float:
        """Seconds when events were due but nothing was stored."""
        ...

    def p95_ms(self, paths: tuple[str, ...]) -> float | None: ...

    def perf_drop(self) -> float | None:
        """How much slower new is than legacy by p95 (0.25 = 25%); None without enough points."""
        ...

    def perf_judgement(self) -> str:
        """Why ``perf_drop`` says what it says (the judge's summary), or "" where none."""
        ...


class Evidence(Protocol):
    """The whole run's evidence, as the triggers see it while the migration is in progress."""

    def now_s(self) -> float: ...

    def window(self, seconds: float) -> WindowEvidence: ...

    def unhealthy(self, services: Sequence[str]) -> list[str]:
        """Those of ``services`` the last health check found down, in the order given."""
        ...

    def overdue(self, grace_s: float) -> tuple[int, str]:
        """Events sent more than ``grace_s`` ago that production still lacks: how many, and
        the first described in words ("" where the evidence has counts, not events)."""
        ...

    def inconsistent(self, window: WindowEvidence, grace_s: float) -> tuple[int, str]:
        """Points stored wrongly in the window (or missing from shadow after ``grace_s``):
        how many, and the first described in words."""
        ...


class Counters(Protocol):
    """Cumulative counters at one health check: whole pipeline, and the new path alone."""

    @property
    def errors(self) -> float: ...

    @property
    def received(self) -> float: ...

    @property
    def new_errors(self) -> float: ...

    @property
    def new_received(self) -> float: ...

    @property
    def healthy(self) -> Mapping[str, bool]: ...


TickT = TypeVar("TickT", bound=Counters)


@dataclass(slots=True)
class CounterWindow(Generic[TickT]):
    """A stretch of the run between two health checks, and the error rates between the first
    and last counter readings: the base of the runner's and the simulator's windows."""

    start_s: float
    end_s: float
    first: TickT | None  # the reading just before the window (or its first)
    last: TickT | None
    ticks: list[TickT]

    @property
    def error_rate(self) -> float:
        """Failed or refused event handlings per event received, whole pipeline."""
        if self.first is None or self.last is None:
            return 0.0
        return error_rate(self.last.errors - self.first.errors,
                          self.last.received - self.first.received)

    @property
    def new_error_rate(self) -> float:
        """The same for the new pipeline alone (the canary, in Flagger's words)."""
        if self.first is None or self.last is None:
            return 0.0
        return error_rate(self.last.new_errors - self.first.new_errors,
                          self.last.new_received - self.first.new_received)


class TickedMonitor(Protocol):
    """What every monitor gives alike: its clock, its windows, its health checks."""

    @property
    def ticks(self) -> Sequence[Counters]: ...

    def now_s(self) -> float: ...

    def window(self, seconds: float) -> WindowEvidence: ...


@dataclass
class MonitorEvidence:
    """The part of ``Evidence`` read straight off a monitor; a runtime's evidence adds loss and
    consistency, which it reads from its own books."""

    monitor: TickedMonitor

    def now_s(self) -> float:
        return self.monitor.now_s()

    def window(self, seconds: float) -> WindowEvidence:
        return self.monitor.window(seconds)

    def unhealthy(self, services: Sequence[str]) -> list[str]:
        ticks = self.monitor.ticks
        return [s for s in services if ticks and not ticks[-1].healthy.get(s, False)]
