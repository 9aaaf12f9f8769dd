"""The unmutated pipeline through every scenario the mutants use, N times: no false alarm.

``python -m tests.mutants.clean_runs --runs 10`` prints one line per run as it ends, then a
table (scenario, runs, passed, false alarms, what the failing verdicts said), each rollback
trigger's false-positive rate (runs it fired in / runs it was armed in: on a healthy pipeline
every firing is a false positive) and, as its last line, a JSON object: ``{"runs": N,
"scenarios": {...: {"runs", "passed", "false_alarms", "seconds"}}, "triggers": {...: {"armed",
"fired"}}, "false_alarms": total, "seconds": total}``. Exit status 0 when every run passed.

Runs are strictly one after another (the machine's cores are shared). Reports go to
``reports/clean-runs/`` (``--report-dir``). ``--co-load`` keeps every core busy with spinning
processes for the whole campaign, as the neighbours on a shared CI runner do: a trigger that
fires only when the machine is busy is still a false alarm.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from harness.runner.run import run_scenario
from harness.scenario import load_scenario

from . import MUTANTS

ROOT = Path(__file__).resolve().parents[2]
#: Every scenario a mutant must fail, and every one whose triggers must stay quiet on a healthy
#: pipeline: the full migration, the trigger scenario, the survive scenarios.
SCENARIOS = sorted({scenario for _, _, scenario in MUTANTS.values()}
                   | {"full_migration", "triggers_stay_quiet"}
                   | {p.stem for p in (ROOT / "scenarios").glob("survive_*.yaml")})


@contextlib.contextmanager
def co_load(processes: int) -> Iterator[None]:
    """``processes`` busy loops at normal priority, stopped on the way out (also on Ctrl-C)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(processes)]
    try:
        yield
    finally:
        for p in spinners:
            p.kill()
        for p in spinners:
            p.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per scenario (default 10)")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS,
                        help="only this scenario (repeatable; default: the mutants' scenarios, "
                             "full_migration, triggers_stay_quiet and every survive_*)")
    parser.add_argument("--report-dir", type=Path, default=ROOT / "reports" / "clean-runs")
    parser.add_argument("--co-load", action="store_true",
                        help="keep every core busy while the scenarios run (a shared CI runner)")
    args = parser.parse_args(argv)
    with co_load(os.cpu_count() or 1) if args.co_load else contextlib.nullcontext():
        return _campaign(args)


def _campaign(args: argparse.Namespace) -> int:
    scenarios = args.scenario or SCENARIOS
    quiet = Console(stderr=True, quiet=True)
    figures: dict[str, dict[str, object]] = {}
    triggers: dict[str, dict[str, int]] = {}
    started = time.monotonic()
    for name in scenarios:
        source = ROOT / "scenarios" / f"{name}.yaml"
        scenario = load_scenario(source)
        passed, alarms, seconds = 0, [], 0.0
        for n in range(1, args.runs + 1):
            t0 = time.monotonic()
            result, run_dir = asyncio.run(run_scenario(
                scenario, source=source, runtime="process", time_scale=None,
                report_dir=args.report_dir, console=quiet))
            took = time.monotonic() - t0
            seconds += took
            for trigger in scenario.triggers:
                tally = triggers.setdefault(trigger.name, {"armed": 0, "fired": 0})
                tally["armed"] += 1
                tally["fired"] += int(result.rollback.trigger == trigger.name)
            if result.verdict.passed:
                passed += 1
            else:
                alarms.append(f"run {n}: {result.verdict.summary} ({run_dir / 'report.html'})")
            print(f"{name} run {n}/{args.runs}: {'pass' if result.verdict.passed else 'FAIL'} "
                  f"in {took:.0f} s - {result.verdict.summary}", flush=True)
        figures[name] = {"runs": args.runs, "passed": passed, "false_alarms": len(alarms),
                         "seconds": round(seconds, 1), "alarms": alarms}
    total = sum(int(f["false_alarms"]) for f in figures.values())  # type: ignore[call-overload]
    print()
    print("| scenario | runs | passed | false alarms | mean run |")
    print("|---|---|---|---|---|")
    for name, f in figures.items():
        print(f"| {name} | {f['runs']} | {f['passed']} | {f['false_alarms']} | "
              f"{float(f['seconds']) / max(1, args.runs):.0f} s |")  # type: ignore[arg-type]
    for name, f in figures.items():
        for alarm in f["alarms"]:  # type: ignore[attr-defined]
            print(f"  {name}: {alarm}")
    print()
    print("| trigger | runs armed | fired (false positives) | rate |")
    print("|---|---|---|---|")
    for name, tally in sorted(triggers.items()):
        print(f"| {name} | {tally['armed']} | {tally['fired']} | "
              f"{tally['fired'] / max(1, tally['armed']):.1%} |")
    print(json.dumps({"runs": args.runs,
                      "scenarios": {n: {k: v for k, v in f.items() if k != "alarms"}
                                    for n, f in figures.items()},
                      "triggers": triggers,
                      "false_alarms": total,
                      "seconds": round(time.monotonic() - started, 1)}))
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
