"""Run a chaos schedule, shrink it when the verdict fails, and write the report.

Layout of what a chaos run writes, under ``report_dir``::

    chaos-<seed>-<time>-<hex>/
        schedule.json          the schedule drawn (``cutover chaos --replay`` takes it)
        minimal.json           the minimal failing schedule (when the verdict failed)
        original.yaml          the scenario each run ran, as a scenario file
        original/chaos-<seed>-.../report.html
        shrink-01.yaml, shrink-01/chaos-<seed>-.../report.html, ...
        index.html             every run with its verdict

The final report is the report of the run of the minimal failing schedule (or of the original
run when it passed) written again with a ``chaos`` section: the original and minimal
schedules and every shrink step, each linking its own report.

A shrink candidate counts as failing only when it fails in the same way as the original (lost,
duplicated, unexpected or inconsistent events, an aborted run, a broken SLO), so the shrink
does not wander off to an unrelated failure.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from harness.console import make_console
from harness.report import render_index, render_run
from harness.results import ChaosAttempt, ChaosFault, ChaosInfo, RunResult
from harness.runner.run import run_scenario

from .schedule import Schedule, scenario_for, scenario_name, scenario_yaml
from .shrink import Attempt, ShrinkResult, shrink


@dataclass(slots=True)
class ChaosOutcome:
    passed: bool
    result: RunResult  # the final run's result, with its chaos section
    run_dir: Path  # the final run's directory (report.html inside)
    chaos_dir: Path
    shrink: ShrinkResult | None = None  # None: the original run passed

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"


def failure_kinds(result: RunResult) -> set[str]:
    """How a run failed, in kinds a shrink must keep (empty when it passed)."""
    if result.verdict.passed:
        return set()
    c = result.counts
    kinds = {name for name in ("lost", "duplicated", "unexpected", "inconsistent")
             if getattr(c, name) > 0}
    if any(r.startswith("the run could not complete") for r in result.verdict.reasons):
        kinds.add("aborted")
    if result.rollback.triggered:
        kinds.add("rollback")
    covered = {"loss", "duplicated", "inconsistent"}
    kinds |= {f"slo {s.metric}" for s in result.slos if not s.passed and s.metric not in covered}
    return kinds or {"failed"}


def schedule_table(schedule: Schedule, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col, justify in (("#", "right"), ("at", "right"), ("for", "right"),
                         ("where in the migration", "left"), ("fault", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    tl = schedule.timeline
    for f in schedule.faults:
        table.add_row(str(f.id), f"{f.at:g} s",
                      f"{f.for_:g} s" if f.for_ is not None else "(ends by itself)",
                      tl.phase_at(f.at), f.fault.describe())
    if not schedule.faults:
        table.add_row("", "", "", "", "no fault")
    return table


def chaos_faults(schedule: Schedule) -> list[ChaosFault]:
    tl = schedule.timeline
    return [ChaosFault(id=f.id, kind=f.fault.kind, at_s=f.at, for_s=f.for_,
                       phase=tl.phase_at(f.at), description=f.fault.describe())
            for f in schedule.faults]


def replay_command(path: Path, runtime: str, service_modules: dict[str, str] | None) -> str:
    extra = "".join(f" --service-module {k}={v}" for k, v in (service_modules or {}).items())
    return f"cutover chaos --replay {path} --runtime {runtime}{extra}"


async def run_chaos(schedule: Schedule, *, runtime: str, report_dir: Path,
                    max_shrinks: int = 20, console: Console | None = None,
                    service_modules: dict[str, str] | None = None,
                    load: str = "50/s") -> ChaosOutcome:
    """Run ``schedule`` on ``runtime`` (process or containers, already chosen); on a failed
    verdict shrink it with at most ``max_shrinks`` more runs. Writes everything under a new
    directory of ``report_dir`` and returns where the final report is."""
    console = console or make_console(stderr=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    chaos_dir = report_dir / f"{scenario_name(schedule)}-{stamp}-{secrets.token_hex(2)}"
    chaos_dir.mkdir(parents=True, exist_ok=True)
    schedule.save(chaos_dir / "schedule.json")
    runs: dict[str, tuple[RunResult, Path]] = {}  # schedule key -> its run
    order: list[tuple[RunResult, Path]] = []

    async def run_one(candidate: Schedule, label: str) -> tuple[RunResult, Path]:
        source = chaos_dir / f"{label}.yaml"
        source.write_text(scenario_yaml(candidate, load=load), encoding="utf-8")
        result, run_dir = await run_scenario(
            scenario_for(candidate, load=load), source=source, runtime=runtime,
            time_scale=1.0, report_dir=chaos_dir / label, console=console,
            service_modules=service_modules,
            # always, so every run of a shrink has the same wiring whatever faults it keeps
            fault_proxy=True)
        runs[candidate.key()] = (result, run_dir)
        order.append((result, run_dir))
        return result, run_dir

    result, run_dir = await run_one(schedule, "original")
    info = ChaosInfo(seed=schedule.seed, duration_s=schedule.duration_s,
                     vocabulary=list(schedule.vocabulary),
                     replay=replay_command(chaos_dir / "schedule.json", runtime, service_modules),
                     original=chaos_faults(schedule), max_shrinks=max_shrinks)
    if result.verdict.passed:
        final = result.model_copy(update={"chaos": info})
        _write(final, run_dir, chaos_dir, order)
        return ChaosOutcome(True, final, run_dir, chaos_dir)

    kinds = failure_kinds(result)
    console.print(f"[red]failed[/] ({', '.join(sorted(kinds))}): "
                  f"{result.verdict.summary.removeprefix('FAILED: ')}",
                  highlight=False)
    console.print(f"shrinking the schedule ({len(schedule.faults)} fault(s)) with at most "
                  f"{max_shrinks} more run(s), keeping failures of kind "
                  f"{', '.join(sorted(kinds))}", highlight=False)

    async def fails(candidate: Schedule) -> bool:
        label = f"shrink-{len(order):02d}"
        got, _ = await run_one(candidate, label)
        return bool(failure_kinds(got) & kinds)

    def before(number: int, change: str, candidate: Schedule) -> None:
        console.rule(f"shrink run {number}/{max_shrinks}: {change} "
                     f"({len(candidate.faults)} fault(s) left)")

    def after(attempt: Attempt) -> None:
        word = "[red]still fails: kept[/]" if attempt.failed else "[green]passes[/]"
        console.print(f"shrink run {attempt.number}: {attempt.change} -> {word}",
                      highlight=False)

    shrunk = await shrink(schedule, fails, max_runs=max_shrinks, on_try=before,
                          on_attempt=after)
    minimal = shrunk.minimal
    result, run_dir = runs[minimal.key()]
    minimal_file = minimal.save(chaos_dir / "minimal.json")
    attempts = []
    for attempt in shrunk.attempts:
        got, where = runs[attempt.schedule.key()]
        link = os.path.relpath(where / "report.html", run_dir)
        attempts.append(ChaosAttempt(number=attempt.number, change=attempt.change,
                                     faults=attempt.faults, failed=attempt.failed,
                                     summary=got.verdict.summary, report=Path(link).as_posix()))
    info = info.model_copy(update={
        "minimal": chaos_faults(minimal), "failure": sorted(kinds), "attempts": attempts,
        "exhausted": shrunk.exhausted, "interrupted": shrunk.interrupted,
        "replay": replay_command(minimal_file, runtime, service_modules)})
    final = result.model_copy(update={"chaos": info})
    _write(final, run_dir, chaos_dir, order)
    return ChaosOutcome(False, final, run_dir, chaos_dir, shrunk)


def _write(result: RunResult, run_dir: Path, chaos_dir: Path,
           order: list[tuple[RunResult, Path]]) -> None:
    (run_dir / "run.json").write_bytes(orjson.dumps(result.model_dump(mode="json"),
                                                    option=orjson.OPT_INDENT_2))
    render_run(result, run_dir)
    if len(order) > 1:
        render_index([(r, d) for r, d in order], chaos_dir / "index.html")
