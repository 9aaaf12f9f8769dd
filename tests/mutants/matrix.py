"""The mutation matrix: every mutant against every scenario, and the fewest scenarios that catch
them all.

``python -m tests.mutants.matrix [--mutant N ...] [--scenario NAME ...] [--report-dir DIR]``

runs each chosen mutant (default: every one in ``MUTANTS``) through each chosen scenario
(default: every scenario a mutant is listed against, plus ``full_migration``), with the mutant's
module(s) in its service(s)' places exactly as ``test_mutants`` does it (`running.run_mutant`),
strictly one run after another (the machine's cores are shared). The full matrix is 18 mutants
x 10 scenarios, three hours or so on two cores.

Each cell says whether the mutant was caught (the verdict failed), by what (the offending
counts: lost / duplicated / unexpected / inconsistent; else the SLOs broken and how far past
their thresholds; else the rollback trigger that fired; else the verdict's first reason) and by
what margin: the number of offending events, or, when no event was wrong, how far the worst
SLO's measured value is past its threshold as a fraction of what the threshold allows. A catch
on one event, or on an SLO less than 10% past, is flagged *weak*: one event's luck either way
would have made it a miss. In a mutant's own scenario the cell also says whether the row's
check in ``test_mutants`` (the evidence it must name) held.

One line per cell as it ends, then the table (scenario x mutant), then the smallest set of
scenarios that catches every mutant some scenario catches (an exact search over subsets up to
`EXACT_LIMIT` catching scenarios, greedy set cover beyond; ties go to the cheaper set in run
time) and the mutants no scenario catches. ``matrix.json`` and ``matrix.md`` go to the report
dir (default ``reports/mutants/``, beside the runs' own reports; rewritten after every cell, so
an interrupted matrix keeps what it ran). The last line of stdout is a JSON object of the
figures. Exit status 0 when every chosen mutant whose own scenario was in the matrix was caught
by it, else 1. A run that could not complete (the harness broke down) is an error, never a
catch. A catch means something only if the unmutated pipeline passes the same scenario:
``python -m tests.mutants.clean_runs``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.results import RunResult, SloResult
from harness.scenario.model import Threshold

from . import MUTANTS
from .running import REPORTS, ROOT, modules, run_mutant

#: Every scenario a mutant is listed against, and the whole migration plan.
DEFAULT_SCENARIOS = sorted({scenario for _, _, scenario in MUTANTS.values()} | {"full_migration"})
#: Above this many catching scenarios the cover is greedy (2**n subsets is too many to try).
EXACT_LIMIT = 20
#: An SLO-only catch less than this far past its threshold (as a fraction of what the
#: threshold allows) is weak, as a catch on one event is.
WEAK_SLO = 0.10
_COUNTS = ("lost", "duplicated", "unexpected", "inconsistent")


# -- one cell -----------------------------------------------------------------------------------


@dataclass
class Cell:
    """One mutant through one scenario."""

    mutant: int
    module: str
    scenario: str
    own: bool  # the scenario the mutant is listed against
    caught: bool  # the verdict failed
    by: str = ""  # "lost 37", "SLO p(95) < 100ms: 412.3 ms", "rollback by loss", ...
    margin: float | None = None  # offending events, else the worst SLO's excess (a fraction)
    margin_text: str = ""  # "37 events", "+312.3 ms past 100 ms (312% of it)"
    weak: bool = False
    reason: str = ""  # the verdict's first reason, as it says it
    rollback: str | None = None  # the trigger that fired, if one did
    counts: dict[str, int] = field(default_factory=dict)  # the nonzero offending counts
    slos: list[str] = field(default_factory=list)  # each SLO broken, with its measured value
    check: str = ""  # own scenario only: "ok: ..." / "failed: ..." (test_mutants' check)
    summary: str = ""  # the verdict's summary
    report: str = ""  # the run's report.html
    seconds: float = 0.0
    error: str = ""  # the run itself failed (an exception, or it could not complete): neither
    # caught nor missed

    @property
    def label(self) -> str:
        """The table's words for the cell."""
        if self.error:
            return "error"
        if not self.caught:
            return "missed"
        return f"caught{' (weak)' if self.weak else ''}: {self.by}"


def _allowance(slo: SloResult, op: str) -> float:
    """What the threshold allows, to measure an excess against: 1% for ``availability >= 99%``
    (the unavailability it tolerates), the threshold itself for ``p(95) < 100ms``."""
    if slo.metric == "availability" and op in (">=", ">"):
        return 1.0 - slo.target
    return abs(slo.target)


def _value(metric: str, value: float) -> str:
    if metric.startswith("p") and metric != "perf_drop":
        return f"{value * 1000:.1f} ms"
    if metric in ("error_rate", "availability", "perf_drop"):
        return f"{value * 100:.3g}%"
    if metric == "throughput":
        return f"{value:.1f}/s"
    return f"{value:g}"


def slo_excess(slo: SloResult) -> tuple[float | None, str]:
    """How far a broken SLO's measured value is past its threshold: the excess as a fraction of
    what the threshold allows (None when it could not be measured, or allows nothing), and in
    words."""
    if slo.measured is None:
        return None, f"{slo.threshold}: not measured ({slo.note or 'no value'})"
    op = Threshold.parse(slo.threshold).op
    past = abs(slo.measured - slo.target)
    allowance = _allowance(slo, op)
    share = past / allowance if allowance else None
    words = (f"{slo.threshold}: measured {_value(slo.metric, slo.measured)}, "
             f"{_value(slo.metric, past)} past")
    if share is not None:
        words += f" ({share:.0%} of what it allows)"
    return share, words


#: How the verdict says the run itself broke down (`harness.runner.verdict.decide`).
ABORTED = "the run could not complete: "


def aborted(result: RunResult) -> str:
    """The reason a run could not complete, "" when it did. A failed verdict on a run that
    broke down is no catch: the harness (or the machine) failed, not the mutant's scenario."""
    reasons = result.verdict.reasons
    return reasons[0] if reasons and reasons[0].startswith(ABORTED) else ""


def judge(result: RunResult) -> dict[str, object]:
    """What a run says about a mutant: caught, by what, with what margin (a `Cell`'s fields).
    A run that could not complete is neither caught nor missed: its ``error`` says why."""
    if why := aborted(result):
        return {"caught": False, "error": why, "reason": why, "summary": result.verdict.summary}
    c = result.counts
    counts = {k: getattr(c, k) for k in _COUNTS if getattr(c, k)}
    broken = [s for s in result.slos if not s.passed]
    excesses = [slo_excess(s) for s in broken]
    rollback = result.rollback.trigger if result.rollback.triggered else None
    caught = not result.verdict.passed
    by, margin, margin_text, weak = "", None, "", False
    if caught:
        if counts:
            events = sum(counts.values())
            by = ", ".join(f"{k} {v}" for k, v in counts.items())
            margin, margin_text, weak = float(events), f"{events} event(s)", events <= 1
        elif broken:
            # the SLO broken by the widest margin (an unmeasured one counts as wide)
            i = max(range(len(broken)), key=lambda i: (excesses[i][0] is None,
                                                       excesses[i][0] or 0.0))
            share, words = excesses[i]
            by = f"SLO {broken[i].threshold}"
            margin, margin_text = share, words
            weak = share is not None and share < WEAK_SLO
        elif rollback:
            by, margin_text = f"rollback by {rollback}", result.rollback.evidence
        else:
            by = result.verdict.reasons[0] if result.verdict.reasons else result.verdict.summary
        if rollback and not by.startswith("rollback"):
            by += f"; rollback by {rollback}"
    return {"caught": caught, "by": by, "margin": margin, "margin_text": margin_text,
            "weak": weak, "reason": result.verdict.reasons[0] if result.verdict.reasons else "",
            "rollback": rollback, "counts": counts, "slos": [w for _, w in excesses],
            "summary": result.verdict.summary}


def _own_check(mutant: int, result: RunResult, run_dir: Path) -> str:
    """The row's check from test_mutants (the evidence the verdict must name), on its own
    scenario's run."""
    from .test_mutants import CASES  # pytest's module: imported only when a run needs it

    case = next(c for c in CASES if c.row == mutant)
    if result.verdict.passed:
        return "failed: not caught"
    try:
        return "ok: " + case.check(result, run_dir)
    except Exception as e:  # noqa: BLE001 - an AssertionError or the check tripping over data
        return f"failed: {type(e).__name__}: {e}"


def run_cell(mutant: int, scenario: str, report_dir: Path) -> Cell:
    module, _, own_scenario = MUTANTS[mutant]
    own = scenario == own_scenario
    started = time.monotonic()
    try:
        result, run_dir, seconds = run_mutant(scenario, modules(mutant), report_dir)
    except Exception as e:  # noqa: BLE001 - one broken run must not lose the matrix
        return Cell(mutant, module, scenario, own, caught=False,
                    error=f"{type(e).__name__}: {e}", seconds=time.monotonic() - started)
    cell = Cell(mutant, module, scenario, own, report=str(run_dir / "report.html"),
                seconds=seconds, **judge(result))  # type: ignore[arg-type]
    if own and not cell.error:
        cell.check = _own_check(mutant, result, run_dir)
    return cell


# -- the smallest cover -------------------------------------------------------------------------


@dataclass(frozen=True)
class Cover:
    scenarios: list[str]  # the chosen set, sorted
    method: str  # "exact" or "greedy"
    covered: list[int]  # every mutant some scenario catches
    uncaught: list[int]  # the chosen mutants no scenario catches
    alternatives: int = 1  # exact only: how many sets of that size cover as well


def smallest_cover(catches: dict[str, set[int]], mutants: list[int],
                   cost: dict[str, float] | None = None,
                   exact_limit: int = EXACT_LIMIT) -> Cover:
    """The fewest scenarios whose catches together include every mutant that any scenario
    catches. Exact (every subset, smallest first) up to ``exact_limit`` catching scenarios,
    greedy beyond; among equally small sets the one with the least ``cost`` (run seconds),
    then the first by name."""
    cost = cost or {}
    useful = sorted(s for s, caught in catches.items() if caught)
    covered = sorted(set().union(*(catches[s] for s in useful)))
    uncaught = sorted(set(mutants) - set(covered))
    if not covered:
        return Cover([], "exact", [], uncaught)
    if len(useful) > exact_limit:
        return Cover(_greedy(catches, useful, set(covered), cost), "greedy", covered, uncaught)
    bit = {m: 1 << i for i, m in enumerate(covered)}
    masks = {s: sum(bit[m] for m in catches[s]) for s in useful}
    everything = (1 << len(covered)) - 1
    for size in range(1, len(useful) + 1):
        found = []
        for combo in itertools.combinations(useful, size):
            mask = 0
            for s in combo:
                mask |= masks[s]
            if mask == everything:
                found.append(combo)
        if found:
            best = min(found, key=lambda combo: (sum(cost.get(s, 0.0) for s in combo), combo))
            return Cover(sorted(best), "exact", covered, uncaught, alternatives=len(found))
    raise AssertionError("unreachable: the union of every useful scenario covers")


def _greedy(catches: dict[str, set[int]], useful: list[str], universe: set[int],
            cost: dict[str, float]) -> list[str]:
    """The classic greedy set cover: at most ln(n) + 1 times the smallest."""
    left, chosen = set(universe), []
    while left:
        best = max(useful, key=lambda s: (len(catches[s] & left), -cost.get(s, 0.0), s))
        chosen.append(best)
        left -= catches[best]
    return sorted(chosen)


# -- the reports --------------------------------------------------------------------------------


def catches_of(cells: list[Cell]) -> dict[str, set[int]]:
    catches: dict[str, set[int]] = {}
    for cell in cells:
        catches.setdefault(cell.scenario, set())
        if cell.caught:
            catches[cell.scenario].add(cell.mutant)
    return catches


def _mean_seconds(cells: list[Cell]) -> dict[str, float]:
    runs: dict[str, list[float]] = {}
    for cell in cells:
        runs.setdefault(cell.scenario, []).append(cell.seconds)
    return {s: sum(v) / len(v) for s, v in runs.items()}


def own_verdicts(cells: list[Cell], mutants: list[int]) -> dict[int, str]:
    """Per chosen mutant: "caught", "missed", "error" in its own scenario, or "not run"."""
    own = {c.mutant: c for c in cells if c.own}
    return {m: ("not run" if m not in own else "error" if own[m].error
                else "caught" if own[m].caught else "missed") for m in mutants}


def figures(cells: list[Cell], mutants: list[int], scenarios: list[str],
            seconds: float, cover: Cover, report_dir: Path) -> dict[str, object]:
    own = own_verdicts(cells, mutants)
    return {"mutants": len(mutants), "scenarios": len(scenarios), "cells": len(cells),
            "caught": sum(c.caught for c in cells),
            "missed": sum(not c.caught and not c.error for c in cells),
            "errors": sum(bool(c.error) for c in cells),
            "weak": sum(c.caught and c.weak for c in cells),
            "own_caught": sum(v == "caught" for v in own.values()),
            "own_run": sum(v != "not run" for v in own.values()),
            "own_not_caught": [m for m, v in own.items() if v in ("missed", "error")],
            "own_checks_failed": [c.mutant for c in cells
                                  if c.own and c.check.startswith("failed")],
            "cover": cover.scenarios, "cover_method": cover.method,
            "cover_alternatives": cover.alternatives, "uncaught": cover.uncaught,
            "seconds": round(seconds, 1), "report": str(report_dir / "matrix.md")}


def _md(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|")


def table(cells: list[Cell], mutants: list[int], scenarios: list[str]) -> list[str]:
    """Scenario x mutant, markdown; a mutant's own scenario is marked with *."""
    at = {(c.scenario, c.mutant): c for c in cells}
    lines = ["| scenario | " + " | ".join(f"m{m:02d}" for m in mutants) + " |",
             "|---|" + "---|" * len(mutants)]
    for s in scenarios:
        row = []
        for m in mutants:
            cell = at.get((s, m))
            text = "" if cell is None else _md(cell.label)
            row.append(f"{text} *" if cell is not None and cell.own else text)
        lines.append(f"| {s} | " + " | ".join(row) + " |")
    return lines


def markdown(cells: list[Cell], mutants: list[int], scenarios: list[str], cover: Cover,
             figs: dict[str, object]) -> str:
    out = ["# Mutation matrix", "",
           f"{figs['cells']} runs: {figs['caught']} caught ({figs['weak']} weak), "
           f"{figs['missed']} missed, {figs['errors']} errors. * marks a mutant's own scenario; "
           "weak: caught on one event, or on an SLO less than "
           f"{WEAK_SLO:.0%} past its threshold.", ""]
    out += table(cells, mutants, scenarios)
    out += ["", "## Smallest set of scenarios that catches every caught mutant", "",
            f"{', '.join(cover.scenarios) or '(none)'} ({cover.method}"
            + (f", one of {cover.alternatives} sets of that size" if cover.alternatives > 1
               else "") + ")", ""]
    if cover.uncaught:
        out += ["Caught by no scenario: " + ", ".join(
            f"{m} ({MUTANTS[m][0]})" for m in cover.uncaught), ""]
    out += ["## Mutants", "", "| mutant | module | replaces | own scenario | own verdict |",
            "|---|---|---|---|---|"]
    own = own_verdicts(cells, mutants)
    for m in mutants:
        module, services, scenario = MUTANTS[m]
        out.append(f"| {m} | {module} | {services} | {scenario} | {own[m]} |")
    out += ["", "## Cells", "", "| mutant | scenario | result | margin | first reason | check "
            "| seconds | report |", "|---|---|---|---|---|---|---|---|"]
    for c in cells:
        reason = c.error or c.reason
        out.append(f"| {c.mutant} | {c.scenario}{' *' if c.own else ''} | {_md(c.label)} | "
                   f"{_md(c.margin_text)} | {_md(reason)[:300]} | {_md(c.check)[:200]} | "
                   f"{c.seconds:.0f} | {c.report} |")
    return "\n".join(out) + "\n"


def write_reports(cells: list[Cell], mutants: list[int], scenarios: list[str],
                  report_dir: Path, seconds: float, done: bool = True) -> dict[str, object]:
    """``matrix.json`` and ``matrix.md`` into ``report_dir``; returns the figures."""
    cover = smallest_cover(catches_of(cells), mutants, _mean_seconds(cells))
    figs = figures(cells, mutants, scenarios, seconds, cover, report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "matrix.json").write_text(json.dumps({
        "complete": done, "figures": figs,
        "mutants": {str(m): {"module": MUTANTS[m][0], "replaces": MUTANTS[m][1],
                             "own_scenario": MUTANTS[m][2]} for m in mutants},
        "scenarios": scenarios,
        "cover": asdict(cover),
        "cells": [asdict(c) for c in cells]}, indent=2) + "\n")
    (report_dir / "matrix.md").write_text(markdown(cells, mutants, scenarios, cover, figs))
    return figs


# -- the command --------------------------------------------------------------------------------


def _progress(n: int, total: int, cell: Cell) -> str:
    head = (f"[{n}/{total}] m{cell.mutant:02d} {cell.module} x {cell.scenario}"
            f"{' (own)' if cell.own else ''}")
    if cell.error:
        where = f" - {cell.report}" if cell.report else ""
        return f"{head}: ERROR {cell.error} in {cell.seconds:.0f} s{where}"
    what = (f"CAUGHT{' (weak)' if cell.weak else ''} by {cell.by} [{cell.margin_text}]"
            if cell.caught else "missed")
    check = f"; check {cell.check.split(':')[0]}" if cell.check else ""
    return f"{head}: {what}{check} in {cell.seconds:.0f} s - {cell.report}"


def main(argv: list[str] | None = None) -> int:
    every = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutant", type=int, action="append", choices=sorted(MUTANTS),
                        metavar="N", help="only this mutant (repeatable; default: all)")
    parser.add_argument("--scenario", action="append", choices=every, metavar="NAME",
                        help="only this scenario (repeatable; default: every one a mutant is "
                             "listed against, and full_migration)")
    parser.add_argument("--report-dir", type=Path, default=REPORTS,
                        help="where the runs and matrix.json / matrix.md go "
                             "(default reports/mutants/)")
    args = parser.parse_args(argv)
    mutants = sorted(set(args.mutant or MUTANTS))
    scenarios = list(dict.fromkeys(args.scenario or DEFAULT_SCENARIOS))
    report_dir = args.report_dir.resolve()
    # each mutant's own scenario first: whether it is caught where it must be is known early
    plan = [(m, s) for m in mutants
            for s in sorted(scenarios, key=lambda s, m=m: s != MUTANTS[m][2])]
    cells: list[Cell] = []
    started = time.monotonic()
    try:
        for n, (mutant, scenario) in enumerate(plan, 1):
            cells.append(run_cell(mutant, scenario, report_dir))
            print(_progress(n, len(plan), cells[-1]), flush=True)
            write_reports(cells, mutants, scenarios, report_dir, time.monotonic() - started,
                          done=False)
    except KeyboardInterrupt:
        print(f"interrupted after {len(cells)} of {len(plan)} runs", flush=True)
    done = len(cells) == len(plan)
    figs = write_reports(cells, mutants, scenarios, report_dir, time.monotonic() - started,
                         done=done)
    cover = smallest_cover(catches_of(cells), mutants, _mean_seconds(cells))
    print()
    print("\n".join(table(cells, mutants, scenarios)))
    print()
    print(f"smallest set of scenarios catching every caught mutant ({cover.method}): "
          f"{', '.join(cover.scenarios) or '(none)'}"
          + (f" (one of {cover.alternatives})" if cover.alternatives > 1 else ""))
    if cover.uncaught:
        print("caught by no scenario: " + ", ".join(
            f"m{m:02d} {MUTANTS[m][0]}" for m in cover.uncaught))
    for m, verdict in own_verdicts(cells, mutants).items():
        if verdict != "caught":
            print(f"m{m:02d} {MUTANTS[m][0]} in its own scenario {MUTANTS[m][2]}: {verdict}")
    print(f"written: {report_dir / 'matrix.md'}, {report_dir / 'matrix.json'}")
    figs["complete"] = done
    print(json.dumps(figs))
    return 0 if done and not figs["own_not_caught"] else 1


if __name__ == "__main__":
    sys.exit(main())
