"""Ctrl-C (SIGINT) and SIGTERM during ``cutover run``, in stages, as k6 and Locust do.

The first signal stops the plan: the load stops, the pipeline drains briefly, what was fired
until then is accounted, and a partial run.json and report are written. The second skips what
is left of that wind-down (no accounting) but still stops every service. The third leaves at
once (KeyboardInterrupt): the process runtime's children still die with the harness
(PR_SET_PDEATHSIG); containers may be left behind, so the messages say so before.

Each stage is a task the next signal cancels (`Interrupt.guard`): the code around a stage
goes on as if the stage had ended, so closing the runtime is never itself cancelled by the
first two signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["PLAN", "WIND_DOWN", "Interrupt"]

T = TypeVar("T")

PLAN = 1  # the first signal cancels the plan (and anything before it)
WIND_DOWN = 2  # the second cancels the drain and the accounting
_QUIT = 3  # the third raises KeyboardInterrupt
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Interrupt:
    """Counts SIGINT/SIGTERM once `install`ed on the running loop; not installed (the
    default), it never fires and `guard` just awaits: a run started from Python (the pytest
    plugin, chaos) leaves signals to its caller."""

    say: Callable[[str], None] = lambda _: None  # one line for the person at the terminal
    count: int = 0
    signal_name: str | None = None  # the first signal received: "SIGINT", "SIGTERM"
    at_ns: int | None = None  # when it arrived (time.time_ns())
    _installed: list[signal.Signals] = field(default_factory=list)
    _scope: tuple[int, asyncio.Task[Any]] | None = None

    @property
    def requested(self) -> bool:
        return self.count > 0

    @property
    def description(self) -> str:
        """``Ctrl-C (SIGINT)`` / ``SIGTERM``: the words of the summary line."""
        return "Ctrl-C (SIGINT)" if self.signal_name == "SIGINT" else (self.signal_name or "")

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            loop.add_signal_handler(sig, self._received, sig)
            self._installed.append(sig)

    def uninstall(self) -> None:
        """Back to Python's defaults (SIGINT raises KeyboardInterrupt, SIGTERM ends)."""
        loop = asyncio.get_running_loop()
        while self._installed:
            with contextlib.suppress(RuntimeError, ValueError):
                loop.remove_signal_handler(self._installed.pop())

    def _received(self, sig: signal.Signals) -> None:
        self.count += 1
        if self.signal_name is None:
            self.signal_name = sig.name
            self.at_ns = time.time_ns()
        if self.count == PLAN:
            self.say(f"{self.description}: stopping the load, draining and accounting what "
                     "was fired so far (Ctrl-C again to skip the accounting)")
        elif self.count == WIND_DOWN:
            self.say("stopping every service without accounting (Ctrl-C again to quit at "
                     "once; containers may then be left running)")
        else:
            self.uninstall()
            raise KeyboardInterrupt
        if self._scope is not None:
            stage, task = self._scope
            if self.count >= stage:
                self._cancel(task)

    def _cancel(self, task: asyncio.Task[Any]) -> None:
        # Again 5 s later while it runs on: a cancellation can be lost (3.11's wait_for
        # drops one that races with its inner future's result), and a hold would go on.
        if not task.done():
            task.cancel()
            asyncio.get_running_loop().call_later(5.0, self._cancel, task)

    async def guard(self, stage: int, work: Coroutine[Any, Any, T]) -> tuple[bool, T | None]:
        """Run ``work`` until it ends or the ``stage``-th signal arrives (it is then cancelled).
        Returns (finished, its value). Already that far: ``work`` does not start at all."""
        if self.count >= stage:
            work.close()
            return False, None
        task = asyncio.ensure_future(work)
        outer = self._scope
        self._scope = (stage, task)
        try:
            return True, await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self.count < stage or (current is not None and current.cancelling()):
                raise  # not ours: the caller itself is being cancelled
            return False, None
        finally:
            self._scope = outer
            if not task.done():  # the caller was cancelled while waiting: take the work too
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
