"""``cutover run`` and ``cutover list``."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import click
from rich.table import Table

from harness.console import make_console
from harness.live import LiveTarget, WitnessError, live_problems
from harness.report import render_index
from harness.runner.run import run_scenario
from harness.runtime.select import RuntimeUnavailable, choose
from harness.scenario import ScenarioError, load_scenario, load_scenarios


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


async def run_many(paths: list[Path], *, runtime: str, time_scale: float | None,
                   report_dir: Path, live: LiveTarget | None = None) -> int:
    console = make_console(stderr=True)
    try:
        scenarios = load_scenarios(paths)
        choices = [await choose(runtime, s, console) for s in scenarios]
    except (ScenarioError, RuntimeUnavailable) as exc:
        console.print(f"cutover run: {exc}", markup=False, highlight=False)
        return 2
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
        try:
            result, run_dir = await run_scenario(scenario, source=path, runtime=rt,
                                                 time_scale=time_scale, report_dir=report_dir,
                                                 console=console, live=live)
        except WitnessError as exc:
            console.print(f"cutover run: {exc}", markup=False, highlight=False)
            return 2
        results.append((result, run_dir))
        mark = "[green]PASSED[/]" if result.verdict.passed else "[red]FAILED[/]"
        console.print(f"{mark} {scenario.name}: {result.verdict.summary}", highlight=False)
        console.print(f"report: {run_dir / 'report.html'}")
    if len(results) > 1:
        index = render_index(results, report_dir / "index.html")
        console.print(f"index: {index}")
    return 0 if all(r.verdict.passed for r, _ in results) else 1


def list_scenarios(directory: Path) -> int:
    console = make_console()
    files = sorted(directory.glob("*.yaml"))
    if not files:
        console.print(f"no scenario files in {directory}/")
        return 2
    table = Table(title=f"scenarios in {directory}/")
    for col in ("name", "tags", "phases", "expects", "runtimes"):
        table.add_column(col)
    broken = []
    for f in files:
        try:
            s = load_scenario(f)
        except ScenarioError as exc:
            broken.append(str(exc))
            continue
        expects = s.expect.verdict + (f", rollback by {s.expect.reason or 'any trigger'}"
                                      if s.expect.rollback == "triggered" else "")
        table.add_row(s.name, ", ".join(s.tags), " -> ".join(p.name for p in s.phases),
                      expects, ", ".join(s.runtimes))
    console.print(table)
    for b in broken:
        console.print(f"[red]{b}[/]", highlight=False)
    return 1 if broken else 0
