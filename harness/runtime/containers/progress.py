"""Progress of the long steps (debootstrap, wheel download, docker build) with rich.

One live display for the whole run, so steps that run at the same time (debootstrap beside the
wheel download) each get a line: a spinner, the step, the last line its command printed and
the time so far. When a step ends one line stays behind saying how long it took. With no
console nothing is shown.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

_DETAIL_WIDTH = 60
_QUIET_BELOW_S = 0.5


class Step:
    """One running step; ``line`` is the sink its command's output goes to."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None) -> None:
        self._progress = progress
        self._task = task

    def line(self, text: str) -> None:
        if self._progress is None or self._task is None:
            return
        detail = " ".join(text.split())
        if len(detail) > _DETAIL_WIDTH:
            detail = detail[: _DETAIL_WIDTH - 1] + "…"
        self._progress.update(self._task, detail=escape(detail))


class Reporter:
    """Shows steps on ``console`` (or nowhere when it is None); use it as a context manager."""

    def __init__(self, console: Console | None) -> None:
        self.console = console
        self._progress: Progress | None = None
        # A live display only on a terminal: in a CI log it would print blank frames.
        self._live = console is not None and console.is_terminal
        if console is not None:
            self._progress = Progress(
                SpinnerColumn(), TextColumn("[bold]{task.description}"),
                TextColumn("[dim]{task.fields[detail]}"), TimeElapsedColumn(),
                console=console, transient=True)

    def __enter__(self) -> Self:
        if self._progress is not None and self._live:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None and self._live:
            self._progress.stop()

    @contextmanager
    def step(self, title: str) -> Iterator[Step]:
        progress = self._progress
        if progress is None:
            yield Step()
            return
        started = time.monotonic()
        task = progress.add_task(escape(title), detail="")
        ok = False
        try:
            yield Step(progress, task)
            ok = True
        finally:
            progress.remove_task(task)
            seconds = time.monotonic() - started
            # A step that found everything ready leaves no line: the account says it.
            if not ok or seconds >= _QUIET_BELOW_S:
                mark = "[green]✓[/]" if ok else "[red]✗[/]"
                progress.console.print(f"{mark} {escape(title)} ({seconds:.1f} s)",
                                       highlight=False, soft_wrap=True)

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
