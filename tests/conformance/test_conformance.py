"""``cutover conformance`` against real services: the shipped ones hold every clause, also
started through a pipeline file that renames their settings and leaves enrichment out; a
service with a known defect breaks the clause written for it, and says how.

The defect (tests/mutants/, through the pipeline file's command like any team's service): m07
acknowledges storage's writes before InfluxDB answered, so an outage loses events (C4's
no-loss half)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rich.console import Console

from harness.conformance.clauses import CLAUSES, Verdict
from harness.conformance.run import run_conformance
from harness.pipeline_file import PipelineSpec, load_pipeline, reference_pipeline
from tests.mutants.running import mutant_environment

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def conform(pipeline: PipelineSpec, tmp_path: Path,
            clauses: tuple[str, ...] = ()) -> dict[str, Verdict]:
    with mutant_environment():
        verdicts = asyncio.run(run_conformance(pipeline, runtime="process", clauses=clauses,
                                               report_dir=tmp_path, console=Console(quiet=True)))
    return {v.clause.split()[0]: v for v in verdicts}


@pytest.mark.parametrize("pipeline_file", [None, "pipelines/renamed-no-enrichment.yaml",
                                           # written from CONTRACT.md alone (tests/byo/)
                                           "tests/byo/contract_storage.yaml"])
def test_the_shipped_services_hold_every_clause(tmp_path: Path, pipeline_file: str | None) -> None:
    pipeline = load_pipeline(ROOT / pipeline_file) if pipeline_file else reference_pipeline()
    verdicts = conform(pipeline, tmp_path)
    assert list(verdicts) == list(CLAUSES)  # each verdict under its own id, in run order
    broken = [f"{v.clause}: {v.evidence}" for v in verdicts.values() if not v.passed]
    assert not broken, broken
    assert list(tmp_path.glob("conformance-*/conformance.json"))


def test_fire_and_forget_writes_break_the_outage_clause(tmp_path: Path) -> None:
    # Only C4 is run (--clause C4): running all ten to read one cost CI 89 s.
    verdicts = conform(reference_pipeline().with_commands(
        {"storage": "tests.mutants.m07_fire_and_forget"}), tmp_path, clauses=("C4",))
    assert list(verdicts) == ["C4"]
    assert not verdicts["C4"].passed, verdicts
    assert "lost" in verdicts["C4"].evidence and not verdicts["C4"].evidence.endswith(
        " 0 of 0 events lost"), verdicts["C4"]
