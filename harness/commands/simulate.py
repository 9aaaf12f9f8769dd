"""``cutover simulate``: a scenario in simulated time (the SimPy model in simulators/des)."""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.console import make_console
from harness.errors import SimulateInputError
from harness.runner.verdict import summary_line
from harness.scenario import ScenarioError, load_scenario
from harness.scenario.durations import parse_duration
from harness.scenario.topology import FAILABLE
from harness.simulation import (
    SimulationSetup,
    monte_carlo,
    plan_seconds,
    simulate_scenario,
    time_scale_for,
)
from simulators.des.calibration import CalibrationError, load_calibration
from simulators.des.cluster import ClusterSpec
from simulators.des.params import Reliability
from simulators.home_assistant.load import parse_rate

__all__ = ["FAILABLE", "SimulateInputError", "parse_load_scale", "parse_reliability",
           "run_simulate"]



def parse_load_scale(text: str | None, nominal_rate: float) -> float:
    """``--scale-load``: a factor (``100``, ``0.5``, ``100x``) or a rate the scenario's base
    load is scaled to (``17/min``, ``1000/s``)."""
    if text is None:
        return 1.0
    raw = text.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?(?:e-?\d+)?)\s*x?", raw, re.IGNORECASE)
    if m:
        factor = float(m.group(1))
        if factor <= 0:
            raise SimulateInputError(f"--scale-load {text!r}: the factor must be above 0")
        return factor
    try:
        rate = parse_rate(raw)
    except ValueError:
        raise SimulateInputError(
            f"--scale-load {text!r}: expected a factor like 100, 0.5 or 100x, or the rate to "
            "scale the scenario's base load to, like 17/min or 1000/s") from None
    if rate <= 0:
        raise SimulateInputError(f"--scale-load {text!r}: the rate must be above 0")
    if nominal_rate <= 0:
        raise SimulateInputError(f"--scale-load {text!r}: the scenario's load has no base rate "
                                 "to scale to a rate; give a factor instead (e.g. 10x)")
    return rate / nominal_rate


def parse_reliability(mtbf: tuple[str, ...], mttr: tuple[str, ...]) -> dict[str, Reliability]:
    """``--mtbf storage=2h --mttr storage=30s`` -> {storage: Reliability(7200, 30)}."""
    def pairs(values: tuple[str, ...], flag: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for value in values:
            name, eq, duration = value.partition("=")
            name = name.strip()
            if not eq or name not in FAILABLE:
                raise SimulateInputError(
                    f"{flag} {value!r}: expected SERVICE=DURATION with SERVICE one of "
                    f"{', '.join(FAILABLE)}, e.g. {flag} storage=2h")
            try:
                seconds = parse_duration(duration.strip())
            except ValueError as exc:
                raise SimulateInputError(f"{flag} {value!r}: {exc}") from None
            if seconds <= 0:
                raise SimulateInputError(f"{flag} {value!r}: the duration must be above 0")
            out[name] = seconds
        return out

    bf, tr = pairs(mtbf, "--mtbf"), pairs(mttr, "--mttr")
    for name in bf.keys() - tr.keys():
        raise SimulateInputError(f"--mtbf {name}=...: give how long a repair takes too, "
                                 f"e.g. --mttr {name}=30s")
    for name in tr.keys() - bf.keys():
        raise SimulateInputError(f"--mttr {name}=...: give how often it fails too, "
                                 f"e.g. --mtbf {name}=2h")
    return {name: Reliability(bf[name], tr[name]) for name in bf}


def _nominal_rate(profile: object) -> float:
    rate = profile.rate_at(0.0)  # type: ignore[attr-defined]
    if rate > 0:
        return float(rate)
    return float(profile.expected(60.0)) / 60.0  # type: ignore[attr-defined]


def _human(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.3g} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"


def _has_dask() -> bool:
    return importlib.util.find_spec("distributed") is not None


def run_simulate(path: Path, *, seed: int, time_scale: float | None, duration: str | None,
                 scale_load: str | None, calibration: Path | None, runs: int,
                 report_dir: Path, mtbf: tuple[str, ...], mttr: tuple[str, ...],
                 workers: int | None = None, scheduler: str | None = None,
                 console: Console | None = None) -> int:
    console = console or make_console(stderr=True)
    out = make_console()
    try:
        scenario = load_scenario(path)
        if workers is not None and scheduler is not None:
            raise SimulateInputError("give --workers (a local Dask cluster) or --scheduler (an "
                                     "existing one), not both")
        if (workers is not None or scheduler is not None) and runs <= 1:
            raise SimulateInputError("--workers and --scheduler spread a Monte Carlo's runs: "
                                     "add --runs N (N > 1)")
        if (workers is not None or scheduler is not None) and not _has_dask():
            raise SimulateInputError("--workers and --scheduler need Dask distributed: "
                                     "pip install 'ha-cutover[cluster]' (in this checkout: "
                                     ".venv/bin/pip install -e '.[cluster]')")
        if time_scale is not None and duration is not None:
            raise SimulateInputError("give --time-scale or --duration, not both: --duration "
                                     "picks the time scale that makes the plan that long")
        seconds = None
        if duration is not None:
            try:
                seconds = parse_duration(duration)
            except ValueError as exc:
                raise SimulateInputError(f"--duration: {exc}") from None
            if seconds <= 0:
                raise SimulateInputError("--duration must be above 0, e.g. --duration 8d")
        try:
            scale = time_scale_for(scenario, time_scale=time_scale, duration=seconds)
        except ValueError as exc:
            raise SimulateInputError(str(exc)) from None
        load_scale = parse_load_scale(scale_load, _nominal_rate(scenario.load))
        cal = load_calibration(calibration) if calibration is not None else None
        reliability = parse_reliability(mtbf, mttr)
    except (ScenarioError, CalibrationError, SimulateInputError) as exc:
        console.print(f"cutover simulate: {exc}", markup=False, highlight=False)
        return 2
    setup = SimulationSetup(scenario=scenario, source=path, seed=seed, time_scale=scale,
                            load_scale=load_scale, calibration=cal, calibration_file=calibration,
                            reliability=reliability)
    plan = plan_seconds(scenario) * scale
    console.print(f"{setup.describe()}; the plan's holds last {_human(plan)}",
                  markup=False, highlight=False)
    started = time.perf_counter()
    if runs <= 1:
        result, run_dir, outcome = simulate_scenario(setup, report_dir)
        took = time.perf_counter() - started
        # The summary starts with its own PASSED/FAILED: the word is said once, in colour.
        word, rest = summary_line(scenario.name, result.verdict)
        console.print(Text.assemble((word, "green" if result.verdict.passed else "red"),
                                    " (simulated) ", rest))
        console.print(f"simulated {_human(outcome.duration_s)} ({outcome.counts['emitted']:,} "
                      f"events in {outcome.jobs:,} micro-batches) in {took:.2f} s")
        console.print(f"report: {run_dir / 'report.html'}")
        return 0 if result.verdict.passed else 1

    def progress(i: int, outcome: object) -> None:  # noqa: ARG001 - monte_carlo's callback
        if runs >= 10 and (i + 1) % max(1, runs // 10) == 0:
            console.print(f"  {i + 1}/{runs} runs", highlight=False)

    cluster = (ClusterSpec(workers=workers, scheduler=scheduler)
               if workers is not None or scheduler is not None else None)
    if cluster is not None:
        console.print(f"{runs} runs {cluster.describe()}", markup=False, highlight=False)
    mc, out_dir, rep_dir = monte_carlo(setup, runs, report_dir, progress, cluster)
    took = time.perf_counter() - started
    table = Table(title=f"{scenario.name}: {runs} simulated runs (seeds {seed}..{seed + runs - 1})")
    for col in ("outcome", "runs", "probability", "95% interval (Wilson)"):
        table.add_column(col, justify="right" if col != "outcome" else "left")

    def row(label: str, est: object) -> None:
        lo, hi = est.interval  # type: ignore[attr-defined]
        table.add_row(label, f"{est.k}/{est.n}", f"{est.p:.1%}",  # type: ignore[attr-defined]
                      f"{lo:.1%} .. {hi:.1%}")

    for name, est in mc.triggers.items():
        row(f"rollback by {name}", est)
    row("no rollback", mc.no_rollback)
    row("any event lost", mc.any_loss)
    if mc.passed is not None:
        row(f"verdict passed ({scenario.expect.verdict}"
            f"{', rollback ' + scenario.expect.rollback if scenario.expect.rollback else ''})",
            mc.passed)
    out.print(table)
    spread = Table(title="across runs")
    for col in ("figure", "mean", "p5", "p95"):
        spread.add_column(col, justify="right" if col != "figure" else "left")
    for label, d, unit in (("events lost", mc.lost, ""), ("production p95", mc.p95_ms, " ms"),
                           ("throughput", mc.throughput_eps, "/s")):
        spread.add_row(label, *(f"{d[k]:,.1f}{unit}" if d[k] is not None else "-"
                                for k in ("mean", "p5", "p95")))
    out.print(spread)
    console.print(f"{runs} runs in {took:.1f} s; summary: {out_dir / 'montecarlo.json'}")
    console.print(f"representative run ({rep_dir.name}): {rep_dir / 'report.html'}",
                  highlight=False)
    return 0
