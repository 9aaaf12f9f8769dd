"""The shrinker against fake oracles: what it keeps, in what order, and how many runs it costs;
and against a flaky one, that it keeps only failures that reproduce."""

from __future__ import annotations

import random

import pytest

from harness.chaos.schedule import FAULT, Schedule, ScheduledFault, problems
from harness.chaos.shrink import Reproduction, shrink

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


def truly_fails(schedule: Schedule) -> bool:
    """The defect: the schedule kills storage and has a latency over 100 ms."""
    kinds = [f.fault for f in schedule.faults]
    return (any(f.kind == "kill" and f.service == ["storage"] for f in kinds)
            and any(f.kind == "latency" and f.latency > 0.1 for f in kinds))


class Oracle:
    """Fails iff `truly_fails`, every time."""

    def __init__(self) -> None:
        self.calls: list[Schedule] = []

    async def __call__(self, schedule: Schedule) -> bool:
        self.calls.append(schedule)
        return truly_fails(schedule)


def test_the_fixture_is_a_valid_schedule():
    assert problems(SIX) == []


async def test_shrinks_to_exactly_the_two_faults_that_fail_together():
    oracle = Oracle()
    assert await oracle(SIX)
    oracle.calls.clear()
    # one try: the search itself, one run per candidate (reruns are tested below)
    result = await shrink(SIX, oracle, max_runs=100, tries=1)
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


@pytest.mark.parametrize("tries", [1, 2])
@pytest.mark.parametrize("limit", [0, 1, 3, 7])
async def test_respects_the_limit_and_keeps_the_best_so_far(limit, tries):
    oracle = Oracle()
    result = await shrink(SIX, oracle, max_runs=limit, tries=tries)
    # the original's reruns come first and are not counted in the limit
    assert oracle.calls[:tries - 1] == [SIX] * (tries - 1)
    assert len(oracle.calls) - (tries - 1) == result.runs <= limit
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
    result = await shrink(SIX, Oracle(), max_runs=5, tries=1,
                          on_try=lambda n, change, s, t: before.append((n, change)),
                          on_attempt=after.append)
    assert [n for n, _ in before] == [a.number for a in after] == [1, 2, 3, 4, 5]
    assert [c for _, c in before] == [a.change for a in result.attempts]


async def test_hooks_see_every_try():
    before = []
    result = await shrink(SIX, Oracle(), max_runs=5, tries=2,
                          on_try=lambda n, change, s, t: before.append((n, change, t)))
    assert before == [
        (0, "rerun the original", 2),  # the original's rerun: not one of the shrink's runs
        (1, "remove #1, #2, #3", 1),  # passes: decided at once
        (2, "remove #4, #5, #6", 1), (3, "remove #4, #5, #6", 2),  # fails twice: kept
        (4, "remove #1", 1), (5, "remove #1", 2),
    ]
    assert [str(a.reproduction) for a in result.attempts] == [
        "reproduced 0 of 1", "reproduced 2 of 2", "reproduced 2 of 2"]
    assert result.runs == 5 and result.exhausted


# -- reproduction: keep only failures that happen again ---------------------------------------


class Scripted:
    """`truly_fails`, except where ``script`` names a schedule (by its faults' ids): then that
    schedule's runs go as its list says, one entry per run (a timing-dependent failure), and
    its later runs (or a shortened one's) as `truly_fails` says."""

    def __init__(self, script: dict[tuple[int, ...], list[bool]]) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.calls: list[tuple[int, ...]] = []

    async def __call__(self, schedule: Schedule) -> bool:
        ids = tuple(f.id for f in schedule.faults)
        self.calls.append(ids)
        if self.script.get(ids):
            return self.script[ids].pop(0)
        return truly_fails(schedule)


async def test_a_failure_that_does_not_reproduce_is_kept_by_one_try_and_not_by_two():
    # Removing #1-#3 drops the defect's kill and latency, yet its first run fails (by timing):
    # one try takes that for the truth, then spends its runs on a schedule that never fails
    # again, and ends on it.
    script = {(4, 5, 6): [True, False]}
    once = await shrink(SIX, Scripted(script), max_runs=100, tries=1)
    assert once.attempts[0].change == "remove #1, #2, #3" and once.attempts[0].failed
    assert [f.id for f in once.minimal.faults] == [4, 5, 6] and not truly_fails(once.minimal)
    assert not any(a.failed for a in once.attempts[1:]) and once.runs == 15
    twice = await shrink(SIX, Scripted(script), max_runs=100, tries=2)
    first = twice.attempts[0]
    assert first.change == "remove #1, #2, #3" and not first.failed
    assert first.reproduction == Reproduction(failed=1, runs=2)
    assert str(first.reproduction) == "reproduced 1 of 2"
    assert [f.id for f in twice.minimal.faults] == [2, 3] and truly_fails(twice.minimal)
    assert twice.minimal == (await shrink(SIX, Oracle(), max_runs=100, tries=1)).minimal
    assert twice.minimal_reproduction == Reproduction(2, 2)


async def test_a_passing_first_try_decides_at_once():
    oracle = Scripted({(4, 5, 6): [False, True, True]})
    result = await shrink(SIX, oracle, max_runs=100, tries=3)
    assert oracle.calls[:4] == [(1, 2, 3, 4, 5, 6)] * 2 + [(4, 5, 6)] * 1 + [(1, 2, 3)]
    assert result.attempts[0].reproduction == Reproduction(0, 1)
    # every kept candidate failed in all three runs, every rejected one in all but its last
    for a in result.attempts:
        assert a.reproduction == (Reproduction(3, 3) if a.failed
                                  else Reproduction(a.runs - 1, a.runs))
    assert result.runs == sum(3 if a.failed else a.runs for a in result.attempts)


async def test_an_original_that_does_not_reproduce_is_not_shrunk():
    oracle = Scripted({(1, 2, 3, 4, 5, 6): [False]})  # its first run (outside) failed
    result = await shrink(SIX, oracle, max_runs=100, tries=2)
    assert not result.reproduced
    assert result.original_reproduction == Reproduction(1, 2)
    assert str(result.original_reproduction) == "reproduced 1 of 2"
    assert result.attempts == [] and result.runs == 0 and not result.exhausted
    assert result.minimal == SIX and oracle.calls == [(1, 2, 3, 4, 5, 6)]
    assert result.minimal_reproduction == Reproduction(1, 2)


async def test_an_original_that_reproduces_only_partly_is_not_shrunk_either():
    oracle = Scripted({(1, 2, 3, 4, 5, 6): [True, False]})
    result = await shrink(SIX, oracle, max_runs=100, tries=3)
    assert not result.reproduced and result.original_reproduction == Reproduction(2, 3)
    assert result.attempts == []


async def test_one_try_reruns_nothing():
    oracle = Scripted({(1, 2, 3, 4, 5, 6): [False]})  # would not reproduce: never asked
    result = await shrink(SIX, oracle, max_runs=1, tries=1)
    assert result.reproduced and result.original_reproduction == Reproduction(1, 1)
    assert oracle.calls == [(4, 5, 6)]


async def test_a_candidate_is_begun_only_with_room_for_all_its_tries():
    oracle = Oracle()
    # remove #1-#3 passes (1 run), remove #4-#6 would need 2 more runs: only 1 is left
    result = await shrink(SIX, oracle, max_runs=2, tries=2)
    assert [a.change for a in result.attempts] == ["remove #1, #2, #3"]
    assert result.runs == 1 and result.exhausted and result.minimal == SIX
    assert len(oracle.calls) == 1 + 1  # the original's rerun and one candidate run


@pytest.mark.parametrize("tries", [0, -1])
async def test_tries_below_one_is_refused(tries):
    with pytest.raises(ValueError, match="tries must be >= 1"):
        await shrink(SIX, Oracle(), tries=tries)


class Flaky:
    """`truly_fails`, and besides any run fails with probability ``rate`` by a seeded pattern
    (one draw per run, so the pattern is the same for every run of the test)."""

    def __init__(self, seed: int, rate: float) -> None:
        self.rng = random.Random(seed)
        self.rate = rate

    async def __call__(self, schedule: Schedule) -> bool:
        spurious = self.rng.random() < self.rate
        return truly_fails(schedule) or spurious


async def test_a_flaky_runner_makes_one_try_wander_and_two_tries_hold():
    """Seed 0, a spurious failure in 30% of runs: one try keeps three candidates that do not
    fail and ends on a schedule without the defect; two tries keep none of them."""
    once = await shrink(SIX, Flaky(0, 0.3), max_runs=30, tries=1)
    wrongly_kept = [a.number for a in once.attempts if a.failed and not truly_fails(a.schedule)]
    assert wrongly_kept == [4, 13, 16]
    assert [f.id for f in once.minimal.faults] == [3] and not truly_fails(once.minimal)
    twice = await shrink(SIX, Flaky(0, 0.3), max_runs=30, tries=2)
    assert twice.reproduced and not twice.exhausted
    assert all(truly_fails(a.schedule) for a in twice.attempts if a.failed)
    assert [f.id for f in twice.minimal.faults] == [2, 3] and truly_fails(twice.minimal)
    assert twice.runs == 23


async def test_over_seeds_more_tries_end_on_the_defect_more_often():
    async def wrong(tries: int) -> list[int]:
        return [seed for seed in range(12) if not truly_fails(
            (await shrink(SIX, Flaky(seed, 0.3), max_runs=30, tries=tries)).minimal)]

    # a spurious failure survives n tries with probability 0.3**n: 30%, 9%, 2.7% a candidate
    assert await wrong(1) == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert await wrong(2) == [3, 5, 7]
    assert await wrong(3) == [4, 11]
