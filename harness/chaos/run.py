"""Run a chaos schedule, shrink it when the verdict fails, and write the report.

Layout of what a chaos run writes, under ``report_dir``::

    chaos-<seed>-<time>-<hex>/
        schedule.json          the schedule drawn (``cutover chaos --replay`` takes it)
        minimal.json           the minimal failing schedule (when the verdict failed)
        original.yaml          the scenario each run ran, as a scenario file
        original/chaos-<seed>-.../report.html
        original-2/...         the original's reruns (``shrink_tries`` > 1), before the shrink
        shrink-01.yaml, shrink-01/chaos-<seed>-.../report.html, ...
        index.html             every run with its verdict

The final report is the report of the run of the minimal failing schedule (or of the original
run when it passed, or when its failure did not reproduce) written again with a ``chaos``
section: the original and minimal schedules, how often each failed ("reproduced 2 of 2"), and
every shrink step, each linking its own reports.

A shrink candidate counts as failing only when it fails in the same way as the original (lost,
duplicated, unexpected or inconsistent events, an aborted run, a broken SLO), so the shrink
does not wander off to an unrelated failure, and only when it does so in every one of
``shrink_tries`` runs, so it does not wander off on a failure that came once by timing (the
rule and why: `harness.chaos.shrink`). The original is run again first under the same rule;
when its failure does not reproduce, nothing is shrunk and the report says so.
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
from harness.pipeline_file import PipelineSpec
from harness.report import render_index, render_run
from harness.results import ChaosAttempt, ChaosFault, ChaosInfo, ChaosReproduction, RunResult
from harness.runner.run import run_scenario

from .schedule import Schedule, scenario_for, scenario_name, scenario_yaml
from .shrink import Attempt, Reproduction, ShrinkResult, shrink


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


def reproduction_text(reproduction: Reproduction | ChaosReproduction, tries: int) -> str:
    """"reproduced 2 of 2", and why a count below ``tries`` runs stopped there."""
    text = str(reproduction)
    if reproduction.runs < tries and not reproduction.reproduced:
        text += " (stopped at the first pass)"
    return text


def replay_command(path: Path, runtime: str, service_modules: dict[str, str] | None,
                   pipeline_file: Path | None = None) -> str:
    extra = "".join(f" --service-module {k}={v}" for k, v in (service_modules or {}).items())
    extra += f" --pipeline {pipeline_file}" if pipeline_file else ""
    return f"cutover chaos --replay {path} --runtime {runtime}{extra}"


async def run_chaos(schedule: Schedule, *, runtime: str, report_dir: Path,
                    max_shrinks: int = 20, shrink_tries: int = 2,
                    console: Console | None = None,
                    service_modules: dict[str, str] | None = None,
                    load: str = "50/s", pipeline: PipelineSpec | None = None,
                    pipeline_file: Path | None = None) -> ChaosOutcome:
    """Run ``schedule`` on ``runtime`` (process or containers, already chosen); on a failed
    verdict run it again until it has failed ``shrink_tries`` times in all, then shrink it with
    at most ``max_shrinks`` more runs, each candidate kept only when it fails in every one of
    ``shrink_tries`` runs. Writes everything under a new directory of ``report_dir`` and
    returns where the final report is."""
    if shrink_tries < 1:
        raise ValueError("shrink_tries must be >= 1")
    console = console or make_console(stderr=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    chaos_dir = report_dir / f"{scenario_name(schedule)}-{stamp}-{secrets.token_hex(2)}"
    chaos_dir.mkdir(parents=True, exist_ok=True)
    schedule.save(chaos_dir / "schedule.json")
    order: list[tuple[RunResult, Path]] = []  # every run, in the order it ran

    async def run_one(candidate: Schedule, label: str) -> tuple[RunResult, Path]:
        source = chaos_dir / f"{label}.yaml"
        source.write_text(scenario_yaml(candidate, load=load), encoding="utf-8")
        result, run_dir = await run_scenario(
            scenario_for(candidate, load=load), source=source, runtime=runtime,
            time_scale=1.0, report_dir=chaos_dir / label, console=console,
            service_modules=service_modules, pipeline=pipeline,
            # always, so every run of a shrink has the same wiring whatever faults it keeps
            fault_proxy=True)
        order.append((result, run_dir))
        return result, run_dir

    result, run_dir = await run_one(schedule, "original")
    info = ChaosInfo(seed=schedule.seed, duration_s=schedule.duration_s,
                     vocabulary=list(schedule.vocabulary),
                     replay=replay_command(chaos_dir / "schedule.json", runtime, service_modules,
                                            pipeline_file),
                     original=chaos_faults(schedule), max_shrinks=max_shrinks,
                     shrink_tries=shrink_tries)
    if result.verdict.passed:
        final = result.model_copy(update={"chaos": info})
        _write(final, run_dir, chaos_dir, order)
        return ChaosOutcome(True, final, run_dir, chaos_dir)

    kinds = failure_kinds(result)
    first_run = (result, run_dir)
    console.print(f"[red]failed[/] ({', '.join(sorted(kinds))}): "
                  f"{result.verdict.summary.removeprefix('FAILED: ')}",
                  highlight=False)
    console.print(f"shrinking the schedule ({len(schedule.faults)} fault(s)) with at most "
                  f"{max_shrinks} more run(s), keeping failures of kind "
                  f"{', '.join(sorted(kinds))}"
                  + (f" that happen in each of {shrink_tries} runs (the original first runs "
                     f"again to check that it does)" if shrink_tries > 1 else ""),
                  highlight=False)

    # Each schedule's runs, in order (a schedule is tried once, its runs follow each other).
    runs_of: dict[str, list[tuple[RunResult, Path]]] = {schedule.key(): [first_run]}
    shrink_runs = 0

    async def fails(candidate: Schedule) -> bool:
        nonlocal shrink_runs
        if candidate.key() == schedule.key():  # a rerun of the original (never a candidate)
            label = f"original-{len(runs_of[schedule.key()]) + 1}"
        else:
            shrink_runs += 1
            label = f"shrink-{shrink_runs:02d}"
        got = await run_one(candidate, label)
        runs_of.setdefault(candidate.key(), []).append(got)
        return bool(failure_kinds(got[0]) & kinds)

    def before(number: int, change: str, candidate: Schedule, try_: int) -> None:
        if number == 0:
            console.rule(f"the original schedule again (try {try_} of {shrink_tries})")
            return
        tried = f", try {try_} of {shrink_tries}" if shrink_tries > 1 else ""
        console.rule(f"shrink run {number}/{max_shrinks}: {change} "
                     f"({len(candidate.faults)} fault(s) left{tried})")

    def after(attempt: Attempt) -> None:
        counted = (f" ({reproduction_text(attempt.reproduction, shrink_tries)})"
                   if shrink_tries > 1 else "")
        if attempt.failed:
            word = f"[red]still fails{counted}: kept[/]"
        elif attempt.reproduction.failed:
            word = f"[yellow]failed, but not every time{counted}: not kept[/]"
        else:
            word = "[green]passes[/]"
        console.print(f"shrink candidate {attempt.number}: {attempt.change} -> {word}",
                      highlight=False)

    shrunk = await shrink(schedule, fails, max_runs=max_shrinks, tries=shrink_tries,
                          on_try=before, on_attempt=after)

    def reproduction_of(reproduction: Reproduction, key: str, base: Path) -> ChaosReproduction:
        """With links, from ``base`` (the final run's directory), to each of its runs."""
        tried = runs_of[key][-reproduction.runs:]
        return ChaosReproduction(
            failed=reproduction.failed, runs=reproduction.runs,
            reports=[Path(os.path.relpath(d / "report.html", base)).as_posix()
                     for _, d in tried])

    original = shrunk.original_reproduction
    if not shrunk.reproduced:
        console.print(f"[bold red]THE FAILURE DID NOT REPRODUCE[/] "
                      f"({reproduction_text(original, shrink_tries)}): a rerun of the original "
                      f"schedule passed, so it is not shrunk (a shrink led by a failure that "
                      f"comes and goes ends anywhere). The report is of its failing run and "
                      f"links the reruns.", highlight=False)
        result, final_dir = first_run
        info = info.model_copy(update={
            "failure": sorted(kinds), "interrupted": shrunk.interrupted,
            "original_reproduction": reproduction_of(original, schedule.key(), final_dir)})
        final = result.model_copy(update={"chaos": info})
        _write(final, final_dir, chaos_dir, order)
        return ChaosOutcome(False, final, final_dir, chaos_dir, shrunk)

    minimal = shrunk.minimal
    result, final_dir = runs_of[minimal.key()][-1]  # failed, as all its runs did
    minimal_file = minimal.save(chaos_dir / "minimal.json")
    attempts = []
    for attempt in shrunk.attempts:
        reproduction = reproduction_of(attempt.reproduction, attempt.schedule.key(),
                                       final_dir)
        got, _ = runs_of[attempt.schedule.key()][-1]
        attempts.append(ChaosAttempt(number=attempt.number, change=attempt.change,
                                     faults=attempt.faults, failed=attempt.failed,
                                     summary=got.verdict.summary,
                                     report=reproduction.reports[-1],
                                     reproduction=reproduction))
    info = info.model_copy(update={
        "minimal": chaos_faults(minimal), "failure": sorted(kinds), "attempts": attempts,
        "exhausted": shrunk.exhausted, "interrupted": shrunk.interrupted,
        "original_reproduction": reproduction_of(original, schedule.key(), final_dir),
        "minimal_reproduction": reproduction_of(shrunk.minimal_reproduction, minimal.key(),
                                                final_dir),
        "replay": replay_command(minimal_file, runtime, service_modules, pipeline_file)})
    final = result.model_copy(update={"chaos": info})
    _write(final, final_dir, chaos_dir, order)
    return ChaosOutcome(False, final, final_dir, chaos_dir, shrunk)


def _write(result: RunResult, run_dir: Path, chaos_dir: Path,
           order: list[tuple[RunResult, Path]]) -> None:
    (run_dir / "run.json").write_bytes(orjson.dumps(result.model_dump(mode="json"),
                                                    option=orjson.OPT_INDENT_2))
    render_run(result, run_dir)
    if len(order) > 1:
        render_index([(r, d) for r, d in order], chaos_dir / "index.html")
