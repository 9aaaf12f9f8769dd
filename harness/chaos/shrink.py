"""Shrink a failing chaos schedule to a minimal one that still fails, as Hypothesis does.

Given a schedule that fails and an oracle ``fails(schedule) -> bool`` (for ``cutover chaos``:
run the migration with that schedule and judge it), the shrinker tries simpler schedules in a
fixed order and keeps each one that still fails (in every try: see Reproduction below):

1. remove faults: chunks of half the faults, then quarters, ... then one at a time (delta
   debugging), repeated until no single fault can go;
2. shorten each fault's ``for``: the shortest the vocabulary draws first, then by halving the
   gap between the longest known to pass and the shortest known to fail;
3. simplify each fault's settings towards the plainest value (latency towards 50 ms, no
   jitter, downstream; weather delay and Home Assistant downtime towards 0.5 s; errors on
   every call with 503; a drop with a close frame),

and goes round again while anything changed. Every step is deterministic (no randomness, the
same order every time), a candidate is never tried twice (answers are cached), what passed is
not tried again in a later round (a removal that passed, a value known to pass: failures are
taken to be monotonic, as runs are too dear to check it), and the candidates' runs are at most
``max_runs``: the result is then the smallest failing schedule found so far, marked
``exhausted``. Each candidate is recorded as an `Attempt`, with how many of its runs failed.

Reproduction (``tries``, default 2). A failure that depends on timing may come and go, and one
that happened once is no ground to build on: a candidate kept on a lucky failure becomes the
base of every later step, so the shrink wanders off for its whole budget and ends on a
"minimal" schedule that mostly passes. So the rule is: **a schedule counts as failing only
when it fails in every one of its ``tries`` runs**, and the first run that passes rejects it
with no further run. All, not a majority, because that is the only rule under which a kept
schedule's failure is as solid as what it replaces (a schedule failing half the time survives
two tries a quarter of the time, one try half the time), and because it stops earliest: most
candidates pass, and a passing one costs a single run whatever ``tries`` is; only a kept one
costs ``tries`` runs. A candidate is started only when ``max_runs`` leaves room for all its
tries, since one that cannot be confirmed cannot be kept.

The original schedule is held to the same rule first: its failing run counts as try 1 and it is
run again up to ``tries - 1`` times (these runs are not counted in ``max_runs``). When a rerun
passes, the failure does not reproduce: nothing is shrunk (``ShrinkResult.reproduced`` is
false) and the caller says so. Every count is reported as "reproduced k of n": ``k`` failing
runs of the ``n`` made (with early stopping, a rejected schedule shows ``n - 1`` of ``n``).

Candidates are kept within the vocabulary's bounds (`schedule.admissible`): a shrink never
produces a schedule the pipeline is not meant to survive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .schedule import Schedule, admissible, option_of, with_changes

Oracle = Callable[[Schedule], Awaitable[bool]]
# Before each run: (its number among the shrink's runs, 0 for a rerun of the original; the
# change tried, in words; the schedule; which try of that schedule it is, from 1).
OnTry = Callable[[int, str, Schedule, int], None]


@dataclass(frozen=True, slots=True)
class Reproduction:
    """How often a schedule failed when run again: ``failed`` of ``runs`` runs."""

    failed: int
    runs: int

    @property
    def reproduced(self) -> bool:
        """It failed in every run (the rule a schedule is kept by)."""
        return self.runs > 0 and self.failed == self.runs

    def __str__(self) -> str:
        return f"reproduced {self.failed} of {self.runs}"


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int  # 1-based: the n-th candidate of the shrink
    change: str  # what was tried, in words
    schedule: Schedule
    reproduction: Reproduction  # its runs, stopped at the first that passed

    @property
    def failed(self) -> bool:
        """The candidate failed in every try: it was kept."""
        return self.reproduction.reproduced

    @property
    def runs(self) -> int:
        return self.reproduction.runs

    @property
    def faults(self) -> int:
        return len(self.schedule.faults)


@dataclass(slots=True)
class ShrinkResult:
    original: Schedule
    minimal: Schedule
    # the original's failing run and its reruns; not reproduced: nothing was shrunk
    original_reproduction: Reproduction = field(default_factory=lambda: Reproduction(1, 1))
    attempts: list[Attempt] = field(default_factory=list)
    tries: int = 1
    exhausted: bool = False  # stopped at max_runs with candidates left untried
    interrupted: bool = False  # cancelled (Ctrl-C): minimal is the best found until then

    @property
    def reproduced(self) -> bool:
        return self.original_reproduction.reproduced

    @property
    def runs(self) -> int:
        """Runs of candidates (the original's reruns are not counted)."""
        return sum(a.runs for a in self.attempts)

    @property
    def minimal_reproduction(self) -> Reproduction:
        for a in reversed(self.attempts):
            if a.failed and a.schedule == self.minimal:
                return a.reproduction
        return self.original_reproduction


class _Stop(Exception):
    pass


# (field, the plainest value, tolerance for a numeric search or None for a single try)
_SIMPLER: dict[str, list[tuple[str, Any, float | None]]] = {
    "latency": [("jitter", None, None), ("stream", "downstream", None),
                ("latency", 0.05, 0.025)],
    "weather_slow": [("delay", 0.5, 0.25)],
    "weather_errors": [("error_rate", 1.0, None), ("status", 503, None)],
    "ha_restart": [("downtime", 0.5, 0.25)],
    "ha_drop": [("abort", False, None)],
}
_FOR_TOLERANCE = 1.0  # seconds: a finer search costs a whole run per step


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)


def _round(value: float, tolerance: float) -> float:
    digits = 3 if tolerance < 0.1 else 1
    return round(value, digits)


class _Shrinker:
    def __init__(self, schedule: Schedule, fails: Oracle, max_runs: int, tries: int,
                 on_attempt: Callable[[Attempt], None] | None, on_try: OnTry | None) -> None:
        self.current = schedule
        self.fails = fails
        self.max_runs = max_runs
        self.tries = tries
        self.on_attempt = on_attempt
        self.on_try = on_try
        self.result = ShrinkResult(original=schedule, minimal=schedule, tries=tries)
        self.cache: dict[str, bool] = {schedule.key(): True}
        # What is known to pass, so a later round does not pay for it again (each run costs
        # a whole migration): removals that passed, and per (fault, field) the value known to
        # pass closest to the failing one (failures are taken to be monotonic in it).
        self.removal_passed: set[frozenset[int]] = set()
        self.passing: dict[tuple[int, str], Any] = {}

    async def reproduce(self, schedule: Schedule, change: str, *,
                        already_failed: int = 0) -> Reproduction:
        """Run ``schedule`` until a run passes or it has failed ``tries`` times in all, counting
        ``already_failed`` earlier runs (only the original has one, and its reruns are not
        candidates' runs: numbered 0 for ``on_try``)."""
        failed = already_failed
        while failed < self.tries:
            if self.on_try is not None:
                number = 0 if already_failed else self.result.runs + failed + 1
                self.on_try(number, change, schedule, failed + 1)
            if not await self.fails(schedule):
                return Reproduction(failed, failed + 1)  # decided: no need for the other tries
            failed += 1
        return Reproduction(failed, failed)

    async def check_original(self) -> None:
        self.result.original_reproduction = await self.reproduce(
            self.result.original, "rerun the original", already_failed=1)

    async def attempt(self, candidate: Schedule, change: str) -> bool:
        """Whether ``candidate`` still fails; keeps it as the current schedule if so."""
        key = candidate.key()
        if key not in self.cache:
            # a candidate that cannot be confirmed within the budget cannot be kept: not begun
            if self.result.runs + self.tries > self.max_runs:
                self.result.exhausted = True
                raise _Stop
            reproduction = await self.reproduce(candidate, change)
            tried = Attempt(len(self.result.attempts) + 1, change, candidate, reproduction)
            self.cache[key] = tried.failed
            self.result.attempts.append(tried)
            if self.on_attempt is not None:
                self.on_attempt(tried)
        if self.cache[key]:
            self.current = candidate
        return self.cache[key]

    # -- passes --------------------------------------------------------------------------------

    async def remove(self) -> bool:
        """Delta debugging: chunks of n/2, n/4, ... 1 faults; singles again until none goes."""
        changed = False
        size = max(1, len(self.current.faults) // 2)
        while self.current.faults:
            i, removed = 0, False
            while i < len(self.current.faults):
                ids = [f.id for f in self.current.faults[i:i + size]]
                if frozenset(ids) in self.removal_passed:
                    i += size
                elif await self.attempt(self.current.without(ids), f"remove {_ids(ids)}"):
                    changed = removed = True  # the next chunk slid into place at i
                else:
                    self.removal_passed.add(frozenset(ids))
                    i += size
            if size > 1:
                size = max(1, size // 2)
            elif not removed:
                break
        return changed

    async def _minimise(self, fault_id: int, name: str, lowest: Any, tolerance: float | None,
                        label: str) -> bool:
        """Move one field of one fault towards ``lowest`` while the schedule still fails."""
        fault = self.current.by_id(fault_id).fault
        value = getattr(fault, "for_" if name == "for" else name)
        if value == lowest:
            return False

        def candidate(v: Any) -> Schedule | None:
            try:
                changed = with_changes(fault, **{"for_" if name == "for" else name: v})
            except ValueError:
                return None
            if admissible(changed, self.current.timeline) is not None:
                return None  # outside the vocabulary's bounds: not a schedule to try
            return self.current.replace(fault_id, changed)

        def show(v: Any) -> str:
            return "none" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

        memo = (fault_id, name)
        if memo not in self.passing:
            first = candidate(lowest)
            if first is not None and await self.attempt(
                    first, f"{label} #{fault_id}: {name} {show(value)} -> {show(lowest)}"):
                return True
            self.passing[memo] = lowest
        if tolerance is None or not isinstance(value, int | float) or isinstance(value, bool):
            return False
        # Bisect between the value known to pass and the smallest known to fail.
        passing, failing, changed = float(self.passing[memo]), float(value), False
        while failing - passing > tolerance:
            mid = _round((passing + failing) / 2, tolerance)
            if not passing < mid < failing:
                break
            cand = candidate(mid)
            if cand is not None and await self.attempt(
                    cand, f"{label} #{fault_id}: {name} {show(failing)} -> {show(mid)}"):
                failing, changed = mid, True
            else:
                passing = self.passing[memo] = mid
        return changed

    async def shorten(self) -> bool:
        changed = False
        for f in list(self.current.faults):
            option = option_of(f.fault)
            if f.fault.for_ is None or option is None or option.for_range is None:
                continue
            changed |= await self._minimise(f.id, "for", option.for_range[0], _FOR_TOLERANCE,
                                            "shorten")
        return changed

    async def simplify(self) -> bool:
        changed = False
        for f in list(self.current.faults):
            for name, plainest, tolerance in _SIMPLER.get(f.fault.kind, []):
                changed |= await self._minimise(f.id, name, plainest, tolerance, "simplify")
        return changed

    async def run(self) -> ShrinkResult:
        try:
            await self.check_original()
            while self.result.reproduced:
                changed = await self.remove()
                changed |= await self.shorten()
                changed |= await self.simplify()
                if not changed:
                    break
        except _Stop:
            pass
        except asyncio.CancelledError:
            # Ctrl-C during a run: what was found so far is still worth reporting.
            self.result.interrupted = True
        self.result.minimal = self.current
        return self.result


async def shrink(schedule: Schedule, fails: Oracle, *, max_runs: int = 20, tries: int = 2,
                 on_attempt: Callable[[Attempt], None] | None = None,
                 on_try: OnTry | None = None) -> ShrinkResult:
    """The smallest schedule found that fails in each of ``tries`` runs (``schedule`` itself
    failed once: it is run again first, and not shrunk unless it fails ``tries`` times in all),
    with every candidate recorded. ``fails`` is called at most ``tries - 1 + max_runs`` times;
    ``on_try(number, change, schedule, try)`` is called before each call (``number`` 0 for a
    rerun of the original), ``on_attempt(attempt)`` once a candidate is decided."""
    if max_runs < 0:
        raise ValueError("max_runs must be >= 0")
    if tries < 1:
        raise ValueError("tries must be >= 1")
    return await _Shrinker(schedule, fails, max_runs, tries, on_attempt, on_try).run()
