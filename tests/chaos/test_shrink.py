"""The shrinker against fake oracles: what it keeps, in what order, and how many runs it costs."""

from __future__ import annotations

import pytest

from harness.chaos.schedule import FAULT, Schedule, ScheduledFault, problems
from harness.chaos.shrink import shrink

DURATION = 60.0


def schedule_of(*faults: dict) -> Schedule:
    return Schedule(seed=None, duration_s=DURATION,
                    faults=[ScheduledFault(id=i, fault=FAULT.validate_python(f))
                            for i, f in enumerate(faults, 1)])


# Six faults, every one where the vocabulary would draw it.
SIX = schedule_of(
    {"kind": "weather_slow", "delay": 2.5, "at": 2, "for": 7},
    {"kind": "kill", "service": "storage", "at": 5, "for": 8.4},
    {"kind": "latency", "hop": "enrichment-storage", "latency": 0.4, "jitter": 0.1,
     "stream": "upstream", "at": 10, "for": 9},
    {"kind": "pause", "service": "enrichment", "at": 20, "for": 4},
    {"kind": "down", "hop": "storage-influxdb", "at": 30, "for": 5},
    {"kind": "influxdb_outage", "at": 45, "for": 6},
)


class Oracle:
    """Fails iff the schedule kills storage and has a latency over 100 ms."""

    def __init__(self) -> None:
        self.calls: list[Schedule] = []

    async def __call__(self, schedule: Schedule) -> bool:
        self.calls.append(schedule)
        kinds = [f.fault for f in schedule.faults]
        return (any(f.kind == "kill" and f.service == ["storage"] for f in kinds)
                and any(f.kind == "latency" and f.latency > 0.1 for f in kinds))


def test_the_fixture_is_a_valid_schedule():
    assert problems(SIX) == []


async def test_shrinks_to_exactly_the_two_faults_that_fail_together():
    oracle = Oracle()
    assert await oracle(SIX)
    oracle.calls.clear()
    result = await shrink(SIX, oracle, max_runs=100)
    assert not result.exhausted
    minimal = result.minimal
    assert [f.id for f in minimal.faults] == [2, 3]
    kill, latency = (f.fault for f in minimal.faults)
    assert kill.kind == "kill" and kill.for_ == 1.0  # the shortest the vocabulary draws
    assert latency.kind == "latency" and latency.for_ == 2.0
    # simplified: no jitter, downstream, and the latency just over the oracle's 100 ms
    assert latency.jitter is None and latency.stream == "downstream"
    assert 0.1 < latency.latency <= 0.125
    assert problems(minimal) == []
    # every oracle call is recorded, in order, and none is repeated
    assert result.runs == len(oracle.calls) == len(result.attempts)
    assert [a.number for a in result.attempts] == list(range(1, result.runs + 1))
    assert len({s.key() for s in oracle.calls}) == len(oracle.calls)
    assert result.attempts[0].change == "remove #1, #2, #3"  # halves first
    # each attempt says truly whether its schedule failed
    for a in result.attempts:
        assert a.failed == await Oracle()(a.schedule)
    assert result.runs <= 15  # 6 faults -> 2, shortened and simplified, in 14 runs


async def test_deterministic():
    first = await shrink(SIX, Oracle(), max_runs=100)
    second = await shrink(SIX, Oracle(), max_runs=100)
    assert [a.change for a in first.attempts] == [a.change for a in second.attempts]
    assert first.minimal == second.minimal


@pytest.mark.parametrize("limit", [0, 1, 3, 7])
async def test_respects_the_limit_and_keeps_the_best_so_far(limit):
    oracle = Oracle()
    result = await shrink(SIX, oracle, max_runs=limit)
    assert len(oracle.calls) == result.runs <= limit
    assert result.exhausted
    assert await Oracle()(result.minimal)  # whatever it stopped at still fails
    assert len(result.minimal.faults) <= len(SIX.faults)


async def test_a_failure_without_faults_shrinks_to_the_empty_schedule():
    async def always(schedule: Schedule) -> bool:
        return True

    result = await shrink(SIX, always, max_runs=50)
    assert result.minimal.faults == []
    # one half, then the other: two runs
    assert [a.change for a in result.attempts] == ["remove #1, #2, #3", "remove #4, #5, #6"]


async def test_a_single_fault_is_shortened_then_simplified():
    one = schedule_of({"kind": "weather_slow", "delay": 3.0, "at": 5, "for": 9})
    seen = []

    async def slow_enough(schedule: Schedule) -> bool:
        seen.append(schedule)
        return bool(schedule.faults) and schedule.faults[0].fault.delay >= 1.2

    result = await shrink(one, slow_enough, max_runs=50)
    (fault,) = (f.fault for f in result.minimal.faults)
    assert fault.for_ == 2.0  # weather faults are drawn from 2 s
    assert 1.2 <= fault.delay <= 1.5
    assert result.attempts[0].change == "remove #1"


async def test_hooks_see_each_run_before_and_after():
    before, after = [], []
    result = await shrink(SIX, Oracle(), max_runs=5,
                          on_try=lambda n, change, s: before.append((n, change)),
                          on_attempt=after.append)
    assert [n for n, _ in before] == [a.number for a in after] == [1, 2, 3, 4, 5]
    assert [c for _, c in before] == [a.change for a in result.attempts]
