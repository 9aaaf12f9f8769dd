"""The run's timeline: the phases as they began and ended, and the markers a report draws.

One bookkeeping for both clocks: the runner hands in the wall clock since its start, the
simulator SimPy's ``env.now``. A phase's span ends when the next begins (or the run ends), and
each beginning is itself a ``phase`` marker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

MarkerKind = Literal["phase", "traffic", "fault", "rollback", "trigger", "check", "service",
                     "note"]


@dataclass(slots=True)
class PhaseSpan:
    name: str
    start_s: float  # seconds since the run started
    end_s: float


@dataclass(slots=True)
class Marker:
    """Something that happened at a moment: a fault, a traffic step, a rollback, a check."""

    t_s: float
    kind: MarkerKind
    label: str


@dataclass
class Timeline:
    clock: Callable[[], float]  # seconds since the run started, on the run's own clock
    phases: list[PhaseSpan] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)

    @property
    def phase(self) -> str:
        """The phase in progress ("setup" before the first)."""
        return self.phases[-1].name if self.phases else "setup"

    def mark(self, kind: MarkerKind, label: str) -> None:
        self.markers.append(Marker(round(self.clock(), 3), kind, label))

    def begin_phase(self, name: str) -> None:
        now = self.clock()
        if self.phases:
            self.phases[-1].end_s = now
        self.phases.append(PhaseSpan(name, now, now))
        self.mark("phase", name)

    def end(self) -> None:
        if self.phases:
            self.phases[-1].end_s = self.clock()
