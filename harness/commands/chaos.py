"""``cutover chaos``: a migration under a random schedule of faults, reproducible from its seed,
shrunk to a minimal failing schedule when the verdict fails."""

from __future__ import annotations

import secrets
from pathlib import Path

from rich.text import Text

from harness.chaos.run import reproduction_text, run_chaos, schedule_table
from harness.chaos.schedule import (
    DEFAULT_VOCABULARY,
    RUNTIME_LACKS,
    Schedule,
    ScheduleError,
    default_fault_count,
    draw_schedule,
    problems,
    scenario_for,
)
from harness.console import make_console
from harness.errors import PipelineFileError, RuntimeUnavailable
from harness.pipeline_file import load_pipeline
from harness.runner.fit import unfit
from harness.runner.verdict import summary_line
from harness.runtime.select import choose

DEFAULT_DURATION = 60.0


def _reproduce(seed: int, duration: float, vocabulary: str | None, faults: int | None,
               runtime: str, pipeline_file: Path | None = None) -> str:
    parts = [f"cutover chaos --seed {seed} --duration {duration:g}"]
    if vocabulary:
        parts.append(f"--vocabulary {vocabulary}")
    if faults is not None:
        parts.append(f"--faults {faults}")
    parts.append(f"--runtime {runtime}")
    if pipeline_file is not None:  # the draw leaves out what the pipeline has not
        parts.append(f"--pipeline {pipeline_file}")
    return " ".join(parts)


async def chaos_command(*, seed: int | None, duration: float | None, runtime: str,
                        vocabulary: str | None, faults: int | None, max_shrinks: int,
                        shrink_tries: int, report_dir: Path, replay: Path | None,
                        dry_run: bool, rate: str, service_modules: dict[str, str],
                        pipeline_file: Path | None = None) -> int:
    """Exit status: 0 every fault survived, 1 the verdict failed, 2 bad input."""
    # soft_wrap: a line (an error, a path, a command to copy) is never broken at 80 columns
    console = make_console(stderr=True)

    def bad(message: str) -> int:
        console.print(f"cutover chaos: {message}", markup=False, highlight=False)
        return 2

    if replay is not None:
        given = [name for name, value in (("--seed", seed), ("--duration", duration),
                                          ("--vocabulary", vocabulary), ("--faults", faults))
                 if value is not None]
        if given:
            return bad(f"--replay takes the schedule from its file; leave out {', '.join(given)}")
    try:
        pipeline = load_pipeline(pipeline_file) if pipeline_file else None
        if replay is not None:
            schedule = Schedule.load(replay)
        else:
            seed = secrets.randbelow(2**31) if seed is None else seed
            duration = DEFAULT_DURATION if duration is None else duration
            schedule = Schedule(seed=seed, duration_s=max(duration, 20.0))  # for the choice
        if dry_run and runtime == "auto":
            name, why = "process", "--dry-run draws for processes unless a runtime is named"
        else:
            choice = await choose(runtime, scenario_for(schedule.model_copy(
                update={"faults": []})), console)
            name, why = choice.name, choice.why
        if replay is None:
            assert seed is not None and duration is not None
            schedule = draw_schedule(seed, duration, runtime=name, vocabulary=vocabulary,
                                     faults=faults,
                                     there=pipeline.reaches if pipeline is not None else None)
    except (ScheduleError, PipelineFileError, RuntimeUnavailable) as exc:
        return bad(str(exc))
    if pipeline is not None and (unfitting := unfit(scenario_for(schedule), pipeline)):
        return bad("; ".join(unfitting) + " (--vocabulary can leave such faults out)")

    if replay is not None:
        console.print(f"replaying {replay} (seed {schedule.seed}, {schedule.duration_s:g} s)",
                      highlight=False)
        lacking = [f for f in schedule.faults if f.fault.kind in RUNTIME_LACKS.get(name, ())]
        if lacking:
            return bad(f"{', '.join(f.fault.kind for f in lacking)} cannot run on --runtime "
                       f"{name} (use --runtime containers)")
        for problem in problems(schedule, name):
            console.print(f"[yellow]note:[/] {problem}", highlight=False)
    else:
        assert seed is not None and duration is not None
        count = f"{faults}" if faults is not None else f"up to {default_fault_count(duration)}"
        console.print(f"seed {seed} (run it again: "
                      f"{_reproduce(seed, duration, vocabulary, faults, name, pipeline_file)})",
                      markup=False, highlight=False)
        console.print(f"{count} fault(s) from {', '.join(schedule.vocabulary)}"
                      + (" (the default vocabulary)" if vocabulary is None else "")
                      + (f", less what pipeline {pipeline.name!r} does not have"
                         if vocabulary is None and pipeline is not None
                         and len(schedule.vocabulary) < len(DEFAULT_VOCABULARY) else ""),
                      highlight=False)
    console.print(f"runtime {runtime}: {name} ({why})", markup=False, highlight=False)
    tl = schedule.timeline
    console.print(schedule_table(
        schedule, f"chaos schedule: {len(schedule.faults)} fault(s) over a "
                  f"{schedule.duration_s:g} s migration (parallel run {tl.parallel:g} s, "
                  f"traffic steps of {tl.step_hold:g} s from {tl.t_traffic:g} s, cleanup from "
                  f"{tl.t_cleanup:g} s)"))
    if dry_run:
        print(schedule.to_json(), end="")
        return 0

    outcome = await run_chaos(schedule, runtime=name, report_dir=report_dir,
                              max_shrinks=max_shrinks, shrink_tries=shrink_tries,
                              console=console,
                              service_modules=service_modules or None, load=rate,
                              pipeline=pipeline, pipeline_file=pipeline_file)
    chaos = outcome.result.chaos
    # The verdict's summary starts with PASSED/FAILED: the word is said once, here.
    _, verdict = summary_line(outcome.result.scenario, outcome.result.verdict)
    if outcome.passed:
        console.print(Text.assemble(("passed", "green"), f": {len(schedule.faults)} fault(s) "
                                    f"survived; {verdict}"))
    else:
        shrunk = outcome.shrink
        assert shrunk is not None and chaos is not None
        original = reproduction_text(shrunk.original_reproduction, shrunk.tries)
        if not shrunk.reproduced:
            console.print(f"[bold red]not shrunk: the failure did not reproduce[/] (the "
                          f"original schedule {original}); it may depend on timing: replay it "
                          f"a few times, or shrink with --shrink-tries 1 at your own risk",
                          highlight=False)
        else:
            minimal = reproduction_text(shrunk.minimal_reproduction, shrunk.tries)
            console.print(schedule_table(
                shrunk.minimal,
                f"minimal failing schedule: {len(shrunk.minimal.faults)} of "
                f"{len(schedule.faults)} fault(s), after {shrunk.runs} shrink run(s)"
                + (" (stopped at --max-shrinks)" if shrunk.exhausted else "")
                + (" (interrupted)" if shrunk.interrupted else "")
                + f"; original {original}, minimal {minimal}"))
        console.print(Text.assemble(("FAILED", "red"), f" {verdict}"))
        console.print(f"run it again: {chaos.replay}", markup=False, highlight=False)
    console.print(f"report: {outcome.report}", markup=False, highlight=False)
    return 0 if outcome.passed else 1


__all__ = ["DEFAULT_DURATION", "chaos_command"]
