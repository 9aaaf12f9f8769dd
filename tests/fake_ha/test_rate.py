"""Rate accuracy of the server end to end: what the ledger says was fired, per 10 s window."""

from __future__ import annotations

import asyncio
import time

import pytest

from simulators.home_assistant.load import parse_profile
from simulators.home_assistant.server import FakeHomeAssistant

from .conftest import authed, make_server, recv, send


class DropsOwedAtStop(FakeHomeAssistant):
    """The defect CI met (stop 28): a stop that cancels a pacer the loop had not woken lost
    what it owed, so the count depended on how busy the machine was."""

    def _fire_owed(self, now: float) -> None:
        pass


async def _starved_stop(ha: FakeHomeAssistant) -> tuple[int, float]:
    """2,000/s for 0.3 s, the last 0.2 of it with the event loop blocked (as a busy machine
    blocks it): what was fired, against what the schedule owed."""
    async with ha:
        began = time.monotonic()
        ha.set_profile(parse_profile("2000/s"))
        await asyncio.sleep(0.1)
        time.sleep(0.2)  # noqa: ASYNC251 - the starvation under test
        owed = 2000 * (time.monotonic() - began)
        ha.set_profile(None)
    return len(ha.ledger), owed


async def test_a_stop_fires_what_a_starved_pacer_owed(tmp_path):
    fired, owed = await _starved_stop(make_server(tmp_path))
    assert owed - 2 <= fired <= owed + 20, (fired, owed)


async def test_the_starved_stop_check_catches_a_stop_that_drops_what_was_owed(tmp_path):
    plain = make_server(tmp_path)
    fired, owed = await _starved_stop(DropsOwedAtStop(plain.config, fleet=plain.fleet,
                                                      ledger=plain.ledger))
    assert fired < owed - 300, (fired, owed)  # the blocked 0.2 s is 400 events


def _windows(times_ns: list[int], start_ns: int, end_ns: int, width_s: float = 10.0,
             step_s: float = 0.5) -> list[tuple[float, int]]:
    """Counts in every window of ``width_s`` between start and end (bisect over sorted times)."""
    import bisect

    out = []
    t = start_ns
    while t + width_s * 1e9 <= end_ns:
        lo = bisect.bisect_left(times_ns, t)
        hi = bisect.bisect_left(times_ns, t + int(width_s * 1e9))
        out.append(((t - start_ns) / 1e9, hi - lo))
        t += int(step_s * 1e9)
    return out


def _off_windows(times_ns: list[int], rate: float, stall_s: float
                 ) -> tuple[list[tuple[float, int]], float]:
    """The 10 s windows off the rate by more than 2% plus the stall's share on both edges (a
    pacer catching up puts a stall's events at its end), and that allowance."""
    windows = _windows(times_ns, times_ns[0], times_ns[-1])
    assert len(windows) >= 5, "too short a run to judge 10 s windows"
    allowed = 0.02 * rate * 10 + 2 * rate * stall_s
    return [w for w in windows if abs(w[1] - rate * 10) > allowed], allowed


def _paced(rate: float, seconds: float, stall: tuple[float, float] | None = None) -> list[int]:
    """When an exact pacer fires, in ns; during ``stall`` (from, to) nothing, then the catch-up."""
    times = [int(i / rate * 1e9) for i in range(int(rate * seconds))]
    if stall is not None:
        lo, hi = (int(t * 1e9) for t in stall)
        times = [hi if lo <= t < hi else t for t in times]
    return times


def test_the_window_check_allows_a_measured_stall_and_nothing_else() -> None:
    # CI's case: a 250 ms stall across a window's start put that window at 10,250.
    stalled = _paced(1000, 13, stall=(2.25, 2.5))
    assert _off_windows(stalled, 1000, 0.0)[0] == [(2.5, 10_250)]
    assert _off_windows(stalled, 1000, 0.25)[0] == []
    # The defect the check is for, a pacer 2.5% slow, fails every window despite a stall.
    slow = _paced(975, 13)
    off, _ = _off_windows(slow, 1000, 0.011)
    assert off and len(off) == len(_windows(slow, slow[0], slow[-1]))


async def _longest_stall(stop: asyncio.Event, every_s: float = 0.005) -> float:
    """The longest the event loop was late to wake a sleeper, in seconds, until ``stop``."""
    longest = 0.0
    while not stop.is_set():
        began = time.monotonic()
        await asyncio.sleep(every_s)
        longest = max(longest, time.monotonic() - began - every_s)
    return longest


@pytest.mark.slow
async def test_constant_rate_within_2_percent_over_every_10s_window(tmp_path):
    # The pacer catches up after a stall (a GC pause, a starved core), so the events due during
    # it go at its end: a window whose edge falls in it is off by the rate times the stall (in
    # CI once 250 at 1,000/s). The stall is measured, and its share is allowed on both edges.
    stop = asyncio.Event()
    stalls = asyncio.create_task(_longest_stall(stop))
    async with make_server(tmp_path) as ha:
        ws = await authed(ha, compression=None)
        await send(ws, {"id": 1, "type": "subscribe_events"})
        await recv(ws)
        received = 0

        async def drain() -> None:
            nonlocal received
            async for _ in ws:
                received += 1

        reader = asyncio.create_task(drain())
        ha.set_profile(parse_profile("1000/s"))
        await asyncio.sleep(13)
        ha.set_profile(None)
        await asyncio.sleep(0.3)
        reader.cancel()
    stop.set()
    stall_s = await stalls
    assert stall_s < 1.0, f"the event loop stalled {stall_s:.2f} s: no rate can be judged"
    off, allowed = _off_windows(sorted(e.time_fired_ns for e in ha.ledger), 1000, stall_s)
    assert not off, (off, f"allowed {allowed:.0f} for a longest stall of {stall_s * 1000:.0f} ms")
    assert received == len(ha.ledger)


@pytest.mark.slow
async def test_profile_changed_while_running(tmp_path):
    async with make_server(tmp_path) as ha:
        ha.set_profile(parse_profile("100/s"))
        await asyncio.sleep(3)
        first = ha.fired
        ha.set_profile(parse_profile("400/s"))
        await asyncio.sleep(3)
        second = ha.fired - first
        ha.set_profile(parse_profile("burst:2000,then=0/s"))
        await asyncio.sleep(0.5)
        third = ha.fired - first - second
    assert abs(first - 300) <= 15, first
    assert abs(second - 1200) <= 40, second
    # the burst, plus at most the one or two events the 400/s profile still owed at the switch
    assert 2000 <= third <= 2003, third
