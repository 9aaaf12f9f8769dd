"""``cutover run`` and ``cutover list``."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.text import Text

from harness.console import make_console
from harness.errors import PipelineFileError, RuntimeUnavailable
from harness.live import LiveTarget, WitnessError, live_problems
from harness.pipeline_file import PipelineSpec, reference_pipeline
from harness.report import render_index
from harness.runner.fit import unfit
from harness.runner.interrupt import PLAN, Interrupt
from harness.runner.run import run_scenario
from harness.runner.verdict import summary_line
from harness.runtime.select import Choice, choose
from harness.scenario import ScenarioError, load_scenarios
from harness.scenario.model import Scenario


def live_target(url: str | None, token_env: str | None) -> LiveTarget | None:
    """``--ha-url`` and ``--ha-token-env`` as a `LiveTarget`; click's usage error otherwise."""
    if url is None and token_env is None:
        return None
    if url is None or token_env is None:
        raise click.UsageError("--ha-url and --ha-token-env go together: the URL of the live "
                               "Home Assistant and the variable holding its token")
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise click.BadParameter(f"{url!r}: expected ws://HOST:PORT/api/websocket (or wss://)",
                                 param_hint="--ha-url")
    token = os.environ.get(token_env, "")
    if not token:
        raise click.BadParameter(f"${token_env} is not set or empty: export a long-lived "
                                 "access token (Home Assistant: your profile -> Security) in it",
                                 param_hint="--ha-token-env")
    return LiveTarget(url, token)


# The exit status of a run stopped by Ctrl-C or SIGTERM, as a shell reports a SIGINT death.
INTERRUPTED = 130
_STYLE = {"PASSED": "green", "FAILED": "red", "INTERRUPTED": "yellow"}


async def run_many(paths: list[Path], *, runtime: str, time_scale: float | None,
                   report_dir: Path, live: LiveTarget | None = None,
                   pipeline: PipelineSpec | None = None) -> int:
    console = make_console(stderr=True)
    interrupt = Interrupt(say=lambda line: console.print(line, markup=False, highlight=False))
    interrupt.install()
    try:
        return await _run_many(paths, runtime=runtime, time_scale=time_scale,
                               report_dir=report_dir, live=live, console=console,
                               interrupt=interrupt, pipeline=pipeline or reference_pipeline())
    finally:
        interrupt.uninstall()


async def _run_many(paths: list[Path], *, runtime: str, time_scale: float | None,
                    report_dir: Path, live: LiveTarget | None, console: Console,
                    interrupt: Interrupt, pipeline: PipelineSpec) -> int:
    try:
        scenarios = load_scenarios(paths)
        if unfitting := [f"{s.name}: {p}" for s in scenarios for p in unfit(s, pipeline)]:
            raise PipelineFileError("; ".join(unfitting))
        chosen_ok, picked = await interrupt.guard(PLAN, _choose_all(runtime, scenarios, console))
    except (ScenarioError, PipelineFileError, RuntimeUnavailable) as exc:
        console.print(f"cutover run: {exc}", markup=False, highlight=False)
        return 2
    if not chosen_ok or picked is None or interrupt.requested:
        console.print(f"INTERRUPTED by {interrupt.description} before any scenario started: "
                      "nothing was run", markup=False, highlight=False)
        return INTERRUPTED
    choices = picked
    if live is not None:
        problems = [f"{s.name}: {p}" for s in scenarios for p in live_problems(s)]
        if live.loopback and any(c.name == "containers" for c in choices):
            problems.append(f"{live.url} is this machine's loopback, which containers cannot "
                            "reach: use --runtime process, or an address the containers reach")
        if problems:
            for problem in problems:
                console.print(f"cutover run: not against a live Home Assistant: {problem}",
                              markup=False, highlight=False)
            return 2
        console.print(f"Home Assistant: {live.description}", markup=False, highlight=False)
    for name in dict.fromkeys(f"runtime {runtime}: {c.name} ({c.why})" for c in choices):
        console.print(name, markup=False, highlight=False)
    chosen = [c.name for c in choices]
    results = []
    for path, scenario, rt in zip(paths, scenarios, chosen, strict=True):
        if interrupt.requested:  # between two scenarios: the next one does not start
            break
        try:
            result, run_dir = await run_scenario(scenario, source=path, runtime=rt,
                                                 time_scale=time_scale, report_dir=report_dir,
                                                 console=console, live=live,
                                                 interrupt=interrupt, pipeline=pipeline)
        except WitnessError as exc:
            console.print(f"cutover run: {exc}", markup=False, highlight=False)
            return 2
        results.append((result, run_dir))
        word, rest = summary_line(scenario.name, result.verdict)
        if result.interrupted:
            word = "INTERRUPTED"
        console.print(Text.assemble((word, _STYLE.get(word, "")), " ", rest))
        console.print(f"report: {run_dir / 'report.html'}", markup=False, highlight=False)
    if len(results) > 1:
        index = render_index(results, report_dir / "index.html")
        console.print(f"index: {index}", markup=False, highlight=False)
    if interrupt.requested:
        skipped = len(paths) - len(results)
        if skipped:
            console.print(f"{skipped} scenario(s) not started: interrupted", markup=False,
                          highlight=False)
        return INTERRUPTED
    return 0 if all(r.verdict.passed for r, _ in results) else 1


async def _choose_all(runtime: str, scenarios: list[Scenario],
                      console: Console) -> list[Choice]:
    """Each scenario's runtime (this may build container images: a Ctrl-C stops it)."""
    return [await choose(runtime, s, console) for s in scenarios]
