"""Running a scenario with mutants in services' places: what ``test_mutants`` and ``matrix`` share.

The mutant's module must be importable by the service processes the runtime starts (the repo
root on their ``PYTHONPATH``, the repo as the working directory), and the end-of-run drain gives
up sooner than the harness's own minute (`DRAIN_S`). `run_mutant` does both around one run and
puts everything back afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from harness.results import RunResult
from harness.runner import run as run_module
from harness.scenario import load_scenario
from harness.scenario.model import Scenario

from . import MUTANTS

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports" / "mutants"
#: A mutant that holds events forever (an open breaker in front of a broken receiver) would
#: keep the end-of-run drain waiting its full minute; nothing it holds will ever arrive, so
#: the drain gives up sooner here. The accounting after it is the harness's own.
DRAIN_S = 15.0


def services(row: int) -> tuple[str, ...]:
    """The service(s) mutant ``row`` replaces."""
    _, service, _ = MUTANTS[row]
    return tuple(service.split("+"))


def modules(row: int) -> dict[str, str]:
    """``service_modules`` for mutant ``row``: each service it replaces -> its module."""
    module, _, _ = MUTANTS[row]
    return {svc: f"tests.mutants.{module}" for svc in services(row)}


@contextlib.contextmanager
def mutant_environment() -> Iterator[None]:
    """The repo as working directory and on ``PYTHONPATH`` (the service processes import the
    mutant from there), the drain cut to `DRAIN_S`; all restored on the way out."""
    cwd, pythonpath, drain = Path.cwd(), os.environ.get("PYTHONPATH"), run_module._drain
    os.chdir(ROOT)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [pythonpath])])
    run_module._drain = functools.partial(drain, timeout=DRAIN_S)  # type: ignore[assignment]
    try:
        yield
    finally:
        run_module._drain = drain  # type: ignore[assignment]
        if pythonpath is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = pythonpath
        os.chdir(cwd)


async def run_scenario_quiet(scenario: Scenario, source: Path, modules: dict[str, str],
                             report_dir: Path = REPORTS) -> tuple[RunResult, Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    return await run_module.run_scenario(
        scenario, source=source, runtime="process", time_scale=None, report_dir=report_dir,
        console=Console(stderr=True, quiet=True), service_modules=modules)


def run_mutant(scenario_name: str, modules: dict[str, str],
               report_dir: Path = REPORTS) -> tuple[RunResult, Path, float]:
    """Run ``scenarios/<scenario_name>.yaml`` on the process runtime with ``modules`` in their
    services' places. Returns the result, the run directory and the run's seconds."""
    source = ROOT / "scenarios" / f"{scenario_name}.yaml"
    scenario = load_scenario(source)
    with mutant_environment():
        started = time.monotonic()
        result, run_dir = asyncio.run(run_scenario_quiet(scenario, source, modules, report_dir))
        return result, run_dir, time.monotonic() - started
