"""Benchmark of the simulator: how long the SimPy model takes to run the whole migration plan.

Two cases, both the full plan (scenarios/full_migration.yaml: foundation, parallel run with
shadow writes, the 10..100% traffic switch, cleanup):

- the 8-day plan at the seed's 17 events/min (``--duration 8d --scale-load 17/min``);
  goal: under 10 s;
- 1 hour of it at 1,000 events/s (``--duration 1h --scale-load 1000/s``); goal: under 60 s;
- 1 hour of it at 10,000 events/s (``--duration 1h --scale-load 10000/s``, issue 15); goal:
  60 s or less.

Each is timed for the model alone (``simulate``: wall and CPU seconds) and end to end as
``cutover simulate`` does it (judged, run.json and the HTML report written). The machine is
shared, so the CPU seconds are printed beside the wall seconds; the goals are judged on wall.

``--quick`` runs the same plan shorter (1 day at 17 events/min, 5 minutes at 1,000 events/s,
1 minute at 10,000 events/s) in seconds: it only shows the bench still runs. Its figures sit
under the same keys (``*_8d_*``, ``hour_*``, ``hour_10k_*``; the ``*_simulated_s`` keys say what
was simulated) and its goals are null.

Usage: python bench/simulate.py [--seed 1] [--quick]
Last line of output: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.scenario import load_scenario  # noqa: E402
from harness.simulation import SimulationSetup, result_of, time_scale_for, write_result  # noqa: E402
from simulators.des.model import simulate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CASES = (("8d @ 17/min", 8 * 86400.0, 17 / 60, 10.0),
         ("1h @ 1000/s", 3600.0, 1000.0, 60.0),
         ("1h @ 10000/s", 3600.0, 10_000.0, 60.0))
QUICK_CASES = (("1d @ 17/min", 86400.0, 17 / 60, None),
               ("5min @ 1000/s", 300.0, 1000.0, None),
               ("1min @ 10000/s", 60.0, 10_000.0, None))


def run_case(seed: int, duration: float, rate: float) -> dict[str, float]:
    path = ROOT / "scenarios" / "full_migration.yaml"
    scenario = load_scenario(path)
    setup = SimulationSetup(scenario=scenario, source=path, seed=seed,
                            time_scale=time_scale_for(scenario, time_scale=None,
                                                      duration=duration),
                            load_scale=rate / scenario.load.rate_at(0.0))
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = simulate(scenario, setup.options())
    model_wall, model_cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = result_of(outcome, setup)
    with tempfile.TemporaryDirectory() as tmp:
        write_result(result, Path(tmp))
    total = time.perf_counter() - wall
    return {"simulated_s": outcome.duration_s, "events": outcome.counts["emitted"],
            "jobs": outcome.jobs, "lost": outcome.lost, "model_wall_s": model_wall,
            "model_cpu_s": model_cpu, "end_to_end_s": total,
            "verdict_passed": result.verdict.passed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="1 day at 17/min and 5 minutes at 1000/s; goals not judged")
    args = parser.parse_args()
    seed = args.seed
    cases = QUICK_CASES if args.quick else CASES
    console = Console(width=120)
    figures = {}
    table = Table(title="simulating the whole migration plan (full_migration.yaml)")
    for col in ("case", "simulated", "events", "batches", "model s", "CPU s", "+report s",
                "goal", "verdict"):
        table.add_column(col, justify="right" if col not in ("case", "verdict") else "left")
    for label, duration, rate, goal in cases:
        console.print(f"running {label} ...")
        f = run_case(seed, duration, rate)
        figures[label] = (f, goal)
        simulated = (f"{f['simulated_s'] / 3600:,.1f} h" if f["simulated_s"] >= 3600
                     else f"{f['simulated_s'] / 60:,.1f} min")
        table.add_row(label, simulated, f"{f['events']:,}",
                      f"{f['jobs']:,}", f"{f['model_wall_s']:.2f}", f"{f['model_cpu_s']:.2f}",
                      f"{f['end_to_end_s']:.2f}",
                      "-" if goal is None else
                      f"<={goal:g}s {'met' if f['model_wall_s'] <= goal else 'MISSED'}",
                      "passed" if f["verdict_passed"] else "failed")
    console.print(table)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    console.print(f"load average while running: {load:.2f} on {os.cpu_count()} CPUs")
    eight, hour, hour10k = (figures[case[0]][0] for case in cases)
    print(orjson.dumps({
        "quick": args.quick,
        "plan_simulated_s": round(eight["simulated_s"]),
        "hour_simulated_s": round(hour["simulated_s"]),
        "plan_8d_17_per_min_s": round(eight["model_wall_s"], 2),
        "plan_8d_17_per_min_cpu_s": round(eight["model_cpu_s"], 2),
        "plan_8d_events": eight["events"], "plan_8d_with_report_s":
            round(eight["end_to_end_s"], 2),
        "hour_1000_per_s_s": round(hour["model_wall_s"], 2),
        "hour_1000_per_s_cpu_s": round(hour["model_cpu_s"], 2),
        "hour_events": hour["events"], "hour_with_report_s": round(hour["end_to_end_s"], 2),
        "hour_10k_simulated_s": round(hour10k["simulated_s"]),
        "hour_10000_per_s_s": round(hour10k["model_wall_s"], 2),
        "hour_10000_per_s_cpu_s": round(hour10k["model_cpu_s"], 2),
        "hour_10k_events": hour10k["events"],
        "hour_10k_with_report_s": round(hour10k["end_to_end_s"], 2),
        "goal_8d_under_10s": None if args.quick else eight["model_wall_s"] < 10,
        "goal_hour_under_60s": None if args.quick else hour["model_wall_s"] < 60,
        "goal_hour_10k_60s": None if args.quick else hour10k["model_wall_s"] <= 60,
        "load_average": round(load, 2)}).decode())


if __name__ == "__main__":
    main()
