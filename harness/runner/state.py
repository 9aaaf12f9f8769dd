"""RunState: what the steps change and the monitor, faults, progress and report read."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from harness.results import Drain, Marker, PhaseSpan, Rollback
from harness.scenario.model import Scenario


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
    phases: list[PhaseSpan] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    phase_starts_ns: list[tuple[int, str]] = field(default_factory=list)
    step: str = ""  # the step in progress, in words: where an interrupt stopped the plan
    rollback: Rollback = field(default_factory=Rollback)
    load_span: list[float] = field(default_factory=list)  # [started_s, stopped_s] of the load
    drain: Drain | None = None  # the last drain: the report draws it

    def now_s(self) -> float:
        return (time.time_ns() - self.started_ns) / 1e9

    def mark(self, kind: str, label: str) -> None:
        self.markers.append(Marker(t_s=round(self.now_s(), 3), kind=kind, label=label))

    def begin_phase(self, name: str) -> None:
        now = self.now_s()
        if self.phases:
            self.phases[-1] = self.phases[-1].model_copy(update={"end_s": now})
        self.phases.append(PhaseSpan(name=name, start_s=now, end_s=now))
        self.phase_starts_ns.append((time.time_ns(), name))
        self.phase = name
        self.mark("phase", name)

    def end(self) -> None:
        if self.phases:
            self.phases[-1] = self.phases[-1].model_copy(update={"end_s": self.now_s()})

    def phase_at(self, time_fired_ns: int) -> str:
        name = "setup"
        for start, phase in self.phase_starts_ns:
            if start <= time_fired_ns:
                name = phase
        return name
