"""``cutover run`` and ``cutover list``."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from harness.console import make_console
from harness.report import render_index
from harness.runner.run import run_scenario
from harness.runtime.select import RuntimeUnavailable, choose
from harness.scenario import ScenarioError, load_scenario, load_scenarios


async def run_many(paths: list[Path], *, runtime: str, time_scale: float | None,
                   report_dir: Path) -> int:
    console = make_console(stderr=True)
    try:
        scenarios = load_scenarios(paths)
        choices = [await choose(runtime, s, console) for s in scenarios]
    except (ScenarioError, RuntimeUnavailable) as exc:
        console.print(f"cutover run: {exc}", markup=False, highlight=False)
        return 2
    for name in dict.fromkeys(f"runtime {runtime}: {c.name} ({c.why})" for c in choices):
        console.print(name, markup=False, highlight=False)
    chosen = [c.name for c in choices]
    results = []
    for path, scenario, rt in zip(paths, scenarios, chosen, strict=True):
        result, run_dir = await run_scenario(scenario, source=path, runtime=rt,
                                             time_scale=time_scale, report_dir=report_dir,
                                             console=console)
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
