"""Live progress of a run: one status line (phase, traffic %, events fired and stored, p95,
error rate, time left of the plan) on a terminal, and the phase/step/trigger events as plain
lines everywhere."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

if TYPE_CHECKING:
    from harness.scenario.model import Scenario

    from .home_assistant import HomeAssistantSide
    from .monitor import Monitor
    from .state import RunState


class PlanClock:
    """How long the plan has left, in real seconds: its holds and traffic steps' holds under
    the run's time scale, as the step runner waits them (service starts, health waits and the
    drain take what they take, so they are not counted: the ETA is the plan's, a lower bound)."""

    def __init__(self, scenario: Scenario, time_scale: float) -> None:
        self._steps = [step for phase in scenario.phases for step in phase.steps]
        self._lengths = [_plan_length(step) * time_scale for step in self._steps]
        self._at: int | None = None  # the step in progress
        self._since = 0.0

    def step(self, step: Any, now_s: float) -> None:
        """``step`` (an object of the plan's) starts at ``now_s``."""
        start = 0 if self._at is None else self._at
        for i in range(start, len(self._steps)):
            if self._steps[i] is step:
                self._at, self._since = i, now_s
                return

    def remaining(self, now_s: float) -> float:
        if self._at is None:
            return sum(self._lengths)
        current = max(0.0, self._lengths[self._at] - (now_s - self._since))
        return current + sum(self._lengths[self._at + 1:])


def _plan_length(step: Any) -> float:
    """A step's length in plan seconds (time scale 1); 0 for the steps that do not wait."""
    if step.kind == "hold":
        return float(step.duration)
    if step.kind == "traffic":
        return float(step.hold) * len(step.steps)
    return 0.0


def clock(seconds: float) -> str:
    """``1h02m``, ``4m05s``, ``12s``: short enough for the status line."""
    s = int(seconds + 0.5)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class LiveProgress:
    def __init__(self, console: Console, state: RunState, monitor: Monitor,
                 ha: HomeAssistantSide) -> None:
        self.console = console
        self.state = state
        self.monitor = monitor
        self.ha = ha
        self._printed = 0
        self.plan = PlanClock(state.scenario, state.time_scale)
        self._live = Live(console=console, refresh_per_second=2, transient=True,
                          get_renderable=self._render)
        self._task: asyncio.Task[None] | None = None

    def __enter__(self) -> LiveProgress:
        self.console.print(f"[bold]scenario {self.state.scenario.name}[/] "
                           f"(time scale {self.state.time_scale:g})")
        self._live.__enter__()
        self._task = asyncio.get_running_loop().create_task(self._print_markers())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()
        self._flush_markers()
        self._live.__exit__(*exc)

    async def _print_markers(self) -> None:
        # From the event loop, not from Live's refresh thread: lines print above the status.
        while True:
            self._flush_markers()
            await asyncio.sleep(0.5)

    def step(self, step: Any) -> None:
        self.plan.step(step, self.state.now_s())
        self._flush_markers()

    def _flush_markers(self) -> None:
        for marker in self.state.markers[self._printed:]:
            self.console.print(f"  {marker.t_s:7.1f}s  {marker.kind:<8} {marker.label}")
        self._printed = len(self.state.markers)

    def _render(self) -> Text:
        s, samples = self.state, self.monitor.samples
        last = samples[-1] if samples else None
        p95 = f"{last.p95_ms:.0f} ms" if last and last.p95_ms is not None else "-"
        err = f"{last.error_rate * 100:.2f}%" if last else "-"
        return Text(f"{s.now_s():7.1f}s  phase {s.phase}  new {s.new_percent}%"
                    f"{' +shadow' if s.shadow else ''}  fired {self.ha.fired}  "
                    f"stored {last.stored if last else 0}  p95 {p95}  errors {err}"
                    f"{self._eta()}")

    def _eta(self) -> str:
        """``  eta 4m05s``; nothing once a rollback has replaced the plan or it is over."""
        if self.state.rollback.triggered:
            return ""
        left = self.plan.remaining(self.state.now_s())
        return f"  eta {clock(left)}" if left > 0 else ""
