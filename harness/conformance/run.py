"""``cutover conformance``: start a pipeline file's services against the fake Home Assistant and
a real InfluxDB, check CONTRACT.md clause by clause, one line each; exit 0 only if all pass."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import orjson
from rich.console import Console
from rich.text import Text

from harness.errors import CutoverError
from harness.pipeline_file import PipelineSpec

from .clauses import Verdict, select_clauses
from .stand import Stand

__all__ = ["run_conformance"]


async def run_conformance(pipeline: PipelineSpec, *, runtime: str, report_dir: Path,
                          console: Console, clauses: Sequence[str] = ()) -> list[Verdict]:
    """Each clause's verdict, in order (``clauses``: only these ids, e.g. ``["C4"]``; an
    unknown id raises `InvalidInput` before anything starts); the same as JSON in
    ``conformance.json``."""
    chosen = select_clauses(clauses)
    run_dir = report_dir / f"conformance-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    console.print(f"conformance of pipeline {pipeline.name!r} to CONTRACT.md version "
                  f"{pipeline.contract} on {runtime}"
                  + (f", clauses {', '.join(chosen)} only" if clauses else "")
                  + f"; logs in {run_dir}",
                  markup=False, highlight=False)
    verdicts: list[Verdict] = []
    stand = await Stand.open(pipeline, runtime, run_dir)
    try:
        try:
            await stand.up()
        except CutoverError as exc:
            verdicts.append(Verdict("C0 starts", False, str(exc)))
        else:
            for clause in chosen.values():
                started = time.monotonic()
                try:
                    verdict = await clause(stand)
                except CutoverError as exc:  # a role died, a step it needed failed
                    name = (clause.__doc__ or clause.__name__).splitlines()[0]
                    verdict = Verdict(clause.__name__, False, f"{name}: {exc}")
                verdicts.append(verdict)
                _say(console, verdict, time.monotonic() - started)
    finally:
        await stand.close()
    if verdicts and verdicts[0].clause == "C0 starts":
        _say(console, verdicts[0], 0.0)
    (run_dir / "conformance.json").write_bytes(orjson.dumps(
        {"pipeline": pipeline.name, "contract": pipeline.contract, "runtime": runtime,
         "clauses": [{"clause": v.clause, "passed": v.passed, "evidence": v.evidence}
                     for v in verdicts]}, option=orjson.OPT_INDENT_2))
    failed = [v.clause for v in verdicts if not v.passed]
    console.print(f"{len(verdicts) - len(failed)} of {len(verdicts)} clauses hold"
                  + (f"; broken: {', '.join(failed)}" if failed else ""),
                  markup=False, highlight=False)
    return verdicts


def _say(console: Console, verdict: Verdict, seconds: float) -> None:
    word = ("PASS", "green") if verdict.passed else ("FAIL", "red")
    console.print(Text.assemble(word, f" {verdict.clause}: {verdict.evidence} ({seconds:.0f} s)"),
                  soft_wrap=True)
