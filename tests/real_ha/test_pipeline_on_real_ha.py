"""The pipeline against a real Home Assistant, judged by the harness's witness subscription.

Real Home Assistant is the reference: its automations give one context to several state
changes, which the fake once hid (the new chain then stored 102 of 408 events). Each run here is
a live run (`cutover run --ha-url`), so the services are started as the README documents them
(``python -m pipeline.<name>`` with ``CUTOVER_*`` variables) and every state change the witness
saw while they were subscribed must be in production once, with its state and time.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.live import LiveTarget
from harness.results import RunResult
from harness.runner.run import run_scenario
from harness.scenario import load_scenario
from harness.scenario.model import Scenario
from simulators.home_assistant.ledger import Ledger
from tests.fixtures.real_ha import RealHomeAssistant

pytestmark = [pytest.mark.slow, pytest.mark.real_ha]

ROOT = Path(__file__).resolve().parents[2]
SLOS = ["loss == 0", "duplicated == 0", "inconsistent == 0", "p(95) < 1s"]
NEW_CHAIN = ["weather", "storage", "enrichment", "ingestion"]


def _scenario(name: str, setup: list[Any], hold: str = "30s") -> Scenario:
    return Scenario.model_validate({
        "name": name, "time_scale": 1, "slos": SLOS,
        "phases": [{"name": "setup", "steps": setup},
                   {"name": "watch", "steps": [{"hold": hold}, {"check": ["loss"]}]}]})


async def _live(real_ha: RealHomeAssistant, scenario: Scenario, tmp_path: Path,
                source: Path | None = None, modules: dict[str, str] | None = None
                ) -> tuple[RunResult, Ledger]:
    real_ha.ensure_running()
    result, run_dir = await run_scenario(
        scenario, source=source, runtime="process", time_scale=None, report_dir=tmp_path,
        live=LiveTarget(real_ha.ws_url, real_ha.token), service_modules=modules)
    return result, Ledger.load(run_dir / "ledger.jsonl")


def _judged(result: RunResult, ledger: Ledger, *, at_least: int) -> None:
    c = result.counts
    assert result.verdict.passed, result.verdict.summary
    assert (c.lost, c.duplicated, c.unexpected, c.inconsistent) == (0, 0, 0, 0), c
    assert c.expected >= at_least, f"only {c.expected} state changes judged: {c}"
    # What makes this run worth having: one action's changes share a context in real HA.
    judged = [e for e in ledger if e.connections]
    shared = Counter(e.context_id for e in judged)
    sharing = sum(n for n in shared.values() if n > 1)
    assert sharing >= 0.2 * len(judged), f"{sharing} of {len(judged)} share a context"


async def test_legacy_stores_every_state_change_of_a_real_home_assistant_once(
        real_ha: RealHomeAssistant, tmp_path: Path) -> None:
    scenario = _scenario("real_ha_legacy", [
        {"start": ["influxdb", "admin", "legacy"]},
        {"wait_healthy": ["influxdb", "legacy"]}])  # admin is healthy only with every service
    result, ledger = await _live(real_ha, scenario, tmp_path)
    _judged(result, ledger, at_least=100)
    assert set(result.latency) >= {"legacy"} and "new" not in result.latency


def _new_chain(hold: str = "30s") -> Scenario:
    # No legacy: the new chain owns everything (traffic 100%, announced ahead) before its Home
    # Assistant client starts, so the first event judged is already the new chain's.
    return _scenario("real_ha_new_chain", [
        {"start": ["influxdb", "admin", "weather", "storage", "enrichment"]},
        {"hold": "2s"},
        {"traffic": {"steps": [100], "hold": "2s"}},
        {"start": "ingestion"},
        {"wait_healthy": ["influxdb", *NEW_CHAIN]}], hold=hold)


async def test_the_new_chain_stores_every_state_change_of_a_real_home_assistant_once(
        real_ha: RealHomeAssistant, tmp_path: Path) -> None:
    result, ledger = await _live(real_ha, _new_chain(), tmp_path)
    _judged(result, ledger, at_least=100)
    assert set(result.latency) >= {"new"} and "legacy" not in result.latency


async def test_deduplicating_by_context_is_caught_against_a_real_home_assistant(
        real_ha: RealHomeAssistant, tmp_path: Path) -> None:
    """Wave 1's defect (tests/mutants/m15): what this tier exists to catch."""
    result, ledger = await _live(real_ha, _new_chain(hold="15s"), tmp_path,
                                 modules={"enrichment": "tests.mutants.m15_dedupe_by_context"})
    assert not result.verdict.passed
    lost = result.findings.lost
    assert result.counts.lost >= 0.3 * result.counts.expected, result.counts
    sharing = Counter(e.context_id for e in ledger)
    assert lost and all(sharing[f.context_id] > 1 for f in lost)
    assert any(lost[0].event in reason for reason in result.verdict.reasons)


async def test_the_whole_migration_against_a_real_home_assistant_loses_nothing(
        real_ha: RealHomeAssistant, tmp_path: Path) -> None:
    source = ROOT / "scenarios" / "live_migration.yaml"
    result, ledger = await _live(real_ha, load_scenario(source), tmp_path, source=source)
    _judged(result, ledger, at_least=100)
    assert result.home_assistant == f"live Home Assistant at {real_ha.ws_url}"
    assert result.counts.stored_shadow > 0, "the parallel run shadowed nothing"
    assert {"legacy", "new"} <= set(result.latency)


def _recovered_gaps(run_dir: Path) -> list[dict[str, Any]]:
    """Ingestion's "gap recovered" log lines, each with what it read back and how long."""
    lines = (run_dir / "logs" / "ingestion.log").read_text().splitlines()
    return [doc for doc in map(json.loads, lines)
            if doc.get("message") == "gap recovered from Home Assistant's history"]


async def test_home_assistant_crashing_and_restarting_leaves_nothing_missing_from_production(
        real_ha: RealHomeAssistant, tmp_path: Path) -> None:
    """Issue 12: a crash (SIGKILL) and a graceful restart of Home Assistant under the new
    chain. Home Assistant fires its start-up changes before any client is back and never
    replays; ingestion reads each gap back from the recorder, and the witness (which fills its
    own gaps from the same recorder) finds every state change in production once."""
    real_ha.ensure_running()
    run = asyncio.create_task(run_scenario(
        _new_chain(hold="75s"), source=None, runtime="process", time_scale=None,
        report_dir=tmp_path, live=LiveTarget(real_ha.ws_url, real_ha.token)))
    await asyncio.sleep(25)  # the chain started, subscribed, and storing
    assert not run.done(), run
    crash_s = await real_ha.acrash_and_restart()
    await asyncio.sleep(15)
    restart_s = await real_ha.arestart()
    result, run_dir = await run
    ledger = Ledger.load(run_dir / "ledger.jsonl")
    gaps = _recovered_gaps(run_dir)
    print(f"\nreal HA crash (back in {crash_s:.1f} s) and graceful restart ({restart_s:.1f} s): "
          f"{result.counts.expected} state changes judged, gaps recovered "
          f"{[(g['recovered'], g['took_s']) for g in gaps]}; {result.verdict.summary}")
    _judged(result, ledger, at_least=150)
    assert len(gaps) >= 2 and all(g["recovered"] > 0 for g in gaps), gaps
