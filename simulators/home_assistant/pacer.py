"""Firing events at a schedule's rate: exact over any window, caught up when late.

The :class:`Pacer` fires ``floor(expected) - fired`` at each look; :func:`run_pacer` is the
asyncio loop that drives it, sleeping until the next event is due.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Awaitable, Callable, Sized
from typing import Protocol, runtime_checkable

__all__ = ["FireResult", "Pacer", "Schedule", "run_pacer"]


@runtime_checkable
class Schedule(Protocol):
    """What :class:`Pacer` drives: every load profile and :class:`~.replay.ReplaySource` are one.

    ``t`` is seconds since the schedule started; ``expected`` must be non-decreasing and 0 for
    ``t < 0``; an impulse (a burst) counts in ``expected(0)`` without showing in ``rate_at``.
    """

    def expected(self, t: float) -> float: ...
    def rate_at(self, t: float) -> float: ...
    def finished(self, t: float) -> bool: ...



def _floor(x: float) -> int:
    # Clock differences carry float error: (100.1 - 100.0) * 10 is 0.99999999999994; without
    # the nudge that event would be a tick late and hand-computed counts off by one.
    return math.floor(x + 1e-9 * max(1.0, abs(x)))


class Pacer:
    """Turns a schedule into 'fire N events now' with exact cumulative rate control.

    At time ``now`` it is due ``floor(target) - fired``, where ``target`` is what the schedules
    so far add up to. Lateness is caught up; a paused span is not. Call it from one thread.
    """

    def __init__(self, profile: Schedule, now: float) -> None:
        self._profile = profile
        self._origin = now  # when the current profile's t=0 was
        self._offset = 0.0  # target carried over from earlier profiles, minus paused spans
        self._fired = 0
        self._frozen: float | None = None  # the target at pause time, while paused
        self._listeners: list[Callable[[], None]] = []  # run_pacer's wake-ups

    @property
    def profile(self) -> Schedule:
        return self._profile

    @property
    def total_fired(self) -> int:
        return self._fired

    @property
    def paused(self) -> bool:
        return self._frozen is not None

    def _target(self, now: float) -> float:
        return self._offset + self._profile.expected(now - self._origin)

    def due(self, now: float) -> int:
        """How many events to fire now (0 while paused)."""
        if self._frozen is not None:
            return 0
        return max(0, _floor(self._target(now)) - self._fired)

    def fired(self, n: int) -> None:
        """Record that ``n`` events were fired."""
        if n < 0:
            raise ValueError(f"fired({n}): expected a count >= 0")
        self._fired += n

    def next_due(self, now: float, horizon: float, count: int = 1) -> float | None:
        """The earliest time (to 0.1 ms, never early) when ``count`` more events are due, if
        it is within ``horizon`` seconds of ``now``; None otherwise or while paused."""
        if self._frozen is not None:
            return None
        need = self._fired + max(1, count)
        if _floor(self._target(now)) >= need:
            return now
        lo, hi = now, now + horizon
        if _floor(self._target(hi)) < need:
            return None
        # Bisection needs only a non-decreasing expected(), so any Schedule works.
        while hi - lo > 1e-4:
            mid = (lo + hi) / 2
            if _floor(self._target(mid)) >= need:
                hi = mid
            else:
                lo = mid
        return hi

    def set_profile(self, profile: Schedule, now: float) -> None:
        """Switch to ``profile``, whose t=0 is ``now``; what was due at ``now`` stays due."""
        carried = self._frozen if self._frozen is not None else self._target(now)
        self._profile, self._origin, self._offset = profile, now, carried
        if self._frozen is not None:
            # A burst set while paused is owed at resume; the new profile's paused span is not.
            self._frozen = self._target(now)
        self._notify()

    def pause(self, now: float) -> None:
        """Fire nothing until :meth:`resume`. The profile's clock keeps running meanwhile."""
        if self._frozen is None:
            self._frozen = self._target(now)

    def resume(self, now: float) -> None:
        """Carry on from where the pause left the count: the paused span is forgiven."""
        if self._frozen is None:
            return
        self._offset -= self._target(now) - self._frozen
        self._frozen = None
        self._notify()

    def over(self, now: float) -> bool:
        """The profile will make nothing more due (what is due may still wait to be fired)."""
        return self._profile.finished(now - self._origin)

    def next_over(self, now: float, horizon: float) -> float | None:
        """The earliest time (to 0.1 ms, never early) when the profile is over, if within
        ``horizon`` seconds of ``now``; None otherwise or while paused."""
        if self._frozen is not None:
            return None
        lo, hi = now, now + horizon
        if self.over(lo):
            return lo
        if not self.over(hi):
            return None
        while hi - lo > 1e-4:  # a profile that is over stays over
            mid = (lo + hi) / 2
            if self.over(mid):
                hi = mid
            else:
                lo = mid
        return hi

    def finished(self, now: float) -> bool:
        """The profile is over and nothing is left to fire."""
        return self.over(now) and self.due(now) == 0

    def watch(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` whenever more may be due sooner than expected (a new profile,
        a resume); returns the function that stops it. :func:`run_pacer` wakes on it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()


FireResult = int | Sized | None


async def run_pacer(
    pacer: Pacer,
    fire: Callable[[int], Awaitable[FireResult] | FireResult],
    *,
    tick: float = 0.002,
    max_chunk: int = 1000,
    clock: Callable[[], float] = time.monotonic,
    stop: asyncio.Event | None = None,
    max_sleep: float = 1.0,
    batch: Callable[[], int] | None = None,
) -> None:
    """Fire what ``pacer`` says is due, in chunks of at most ``max_chunk``, until it is
    finished or ``stop`` is set.

    ``fire(k)`` may fire fewer than ``k`` events and say so (an int, or the list of what it
    fired; None means all ``k``): a source that fires a cause's changes together fires only
    whole causes. ``batch()`` is then how many events the source needs due before it can fire
    again (the next cause's size), so the pacer sleeps until then instead of asking in vain.
    Every event fired is counted, so the rate stays exact over time.

    Between looks it sleeps ``tick``, or longer when the next event is further off (at most
    ``max_sleep``), so low rates cost no CPU; ``set_profile``, ``resume`` and ``stop`` wake it.
    """
    if tick <= 0 or max_sleep < tick or max_chunk < 1:
        raise ValueError("run_pacer: expected tick > 0, max_sleep >= tick and max_chunk >= 1")
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] | None = None

    def wake() -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wake_on_stop(event: asyncio.Event) -> None:
        await event.wait()
        wake()

    unwatch = pacer.watch(wake)
    watcher = loop.create_task(wake_on_stop(stop)) if stop is not None else None
    try:
        while stop is None or not stop.is_set():
            n = pacer.due(clock())
            while n > 0:
                k = min(n, max_chunk)
                result = fire(k)
                if inspect.isawaitable(result):
                    result = await result
                done = k if result is None else result if isinstance(result, int) \
                    else len(result)
                pacer.fired(done)
                n -= done
                if done == 0:  # the next cause is bigger than what is due: wait for it
                    break
                if n > 0:
                    # A storm of thousands must not starve the server's readers and pings.
                    await asyncio.sleep(0)
                    if stop is not None and stop.is_set():
                        return
            now = clock()
            if pacer.finished(now):
                return
            need = max(1, batch()) if batch is not None else 1
            if pacer.due(now + tick) >= need:
                delay = tick  # the common case at high rates: skip the bisection
            else:
                at = pacer.next_due(now, max_sleep, need)
                if need > 1 and pacer.due(now + max_sleep) > 0:
                    # What is due but smaller than the next cause goes once the profile is
                    # over (then nothing more comes due and the source fires exactly).
                    over = pacer.next_over(now, max_sleep)
                    if over is not None:
                        at = over if at is None else min(at, over)
                delay = max_sleep if at is None else min(max(at - now, tick), max_sleep)
            waiter = loop.create_future()
            handle = loop.call_later(delay, wake)
            try:
                await waiter
            finally:
                handle.cancel()
                waiter = None
    finally:
        unwatch()
        if watcher is not None:
            watcher.cancel()
