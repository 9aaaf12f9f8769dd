"""The run's shared record: where the plan has got to (``RunState``, as the harness's), and
the two side channels every part may use (``Signals``): markers on the timeline, and pokes
that wake the monitor when something it must look at soon has changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import simpy

from harness.scenario.rules.timeline import MarkerKind, Timeline

from .outcome import RollbackInfo

__all__ = ["RunState", "Signals"]


@dataclass
class RunState:
    phase: str = "setup"
    new_percent: int = 0
    shadow: bool = False
    analysing: bool = False
    rollback: RollbackInfo = field(default_factory=RollbackInfo)
    load_span: list[float] = field(default_factory=list)


class Signals:
    """Markers on the run's timeline, and the monitor's wake-up call."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.timeline = Timeline(lambda: env.now)  # the phases and markers, as the runner's
        self.markers = self.timeline.markers
        self.pokes = 0
        self.poked: simpy.Event | None = None  # the monitor's, while it sleeps

    def mark(self, kind: MarkerKind, label: str) -> None:
        self.timeline.mark(kind, label)

    def poke(self) -> None:
        """Something the monitor must look at soon changed (a fault, a failure, a state)."""
        self.pokes += 1
        waiting = self.poked
        if waiting is not None and not waiting.triggered:
            waiting.succeed()
