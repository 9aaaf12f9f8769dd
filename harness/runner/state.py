"""RunState: what the steps change and the monitor, faults, progress and report read."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from harness.results import Drain, Rollback
from harness.scenario.model import Scenario
from harness.scenario.rules.timeline import Marker, MarkerKind, PhaseSpan, Timeline


@dataclass
class RunState:
    """What the steps change and the monitor and report read."""

    scenario: Scenario
    time_scale: float
    started_ns: int
    phase: str = "setup"
    new_percent: int = 0
    shadow: bool = False
    analysing: bool = False  # triggers are evaluated once the migration has begun
    timeline: Timeline = field(init=False)  # the phases and markers (the shared bookkeeping)
    phase_starts_ns: list[tuple[int, str]] = field(default_factory=list)
    step: str = ""  # the step in progress, in words: where an interrupt stopped the plan
    rollback: Rollback = field(default_factory=Rollback)
    load_span: list[float] = field(default_factory=list)  # [started_s, stopped_s] of the load
    drain: Drain | None = None  # the last drain: the report draws it

    def __post_init__(self) -> None:
        self.timeline = Timeline(self.now_s)

    @property
    def phases(self) -> list[PhaseSpan]:
        return self.timeline.phases

    @property
    def markers(self) -> list[Marker]:
        return self.timeline.markers

    def now_s(self) -> float:
        return (time.time_ns() - self.started_ns) / 1e9

    def mark(self, kind: MarkerKind, label: str) -> None:
        self.timeline.mark(kind, label)

    def begin_phase(self, name: str) -> None:
        self.timeline.begin_phase(name)
        self.phase_starts_ns.append((time.time_ns(), name))
        self.phase = name

    def end(self) -> None:
        self.timeline.end()

    def phase_at(self, time_fired_ns: int) -> str:
        name = "setup"
        for start, phase in self.phase_starts_ns:
            if start <= time_fired_ns:
                name = phase
        return name
