"""Live progress of a run: one status line (phase, traffic %, events fired and stored, p95,
error rate) on a terminal, and the phase/step/trigger events as plain lines everywhere."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

if TYPE_CHECKING:
    from .home_assistant import HomeAssistantSide
    from .monitor import Monitor
    from .run import RunState


class LiveProgress:
    def __init__(self, console: Console, state: RunState, monitor: Monitor,
                 ha: HomeAssistantSide) -> None:
        self.console = console
        self.state = state
        self.monitor = monitor
        self.ha = ha
        self._printed = 0
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
                    f"stored {last.stored if last else 0}  p95 {p95}  errors {err}")
