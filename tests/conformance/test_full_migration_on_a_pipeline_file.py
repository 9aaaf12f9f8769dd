"""The whole plan through a pipeline file that renames every setting it can and leaves
enrichment out: the harness drives services it knows only by that file (issue 17)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rich.console import Console

from harness.pipeline_file import load_pipeline
from harness.runner.run import run_scenario
from harness.scenario import load_scenario

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_full_migration_passes_on_renamed_services_without_enrichment(tmp_path: Path) -> None:
    source = ROOT / "scenarios" / "full_migration.yaml"
    result, run_dir = asyncio.run(run_scenario(
        load_scenario(source), source=source, runtime="process", time_scale=None,
        report_dir=tmp_path, console=Console(quiet=True),
        pipeline=load_pipeline(ROOT / "pipelines" / "renamed-no-enrichment.yaml")))
    assert result.verdict.passed, result.verdict.reasons
    assert result.counts.lost == 0 and result.counts.stored_production == result.counts.expected
    marks = (run_dir / "run.json").read_text()
    assert "start enrichment: skipped, not in pipeline 'renamed, no enrichment'" in marks
