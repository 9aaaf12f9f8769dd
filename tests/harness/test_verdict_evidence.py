"""A failing verdict names what else explains it: dead letters kept by a service.

Events a receiver refuses one by one are dead-lettered by their sender (they are stored
nowhere, so the loss check counts them); the verdict must then say where they are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.checks.accounting import account
from harness.results import Rollback, SloResult
from harness.runner.monitor import Monitor
from harness.runner.verdict import dead_letter_notes, decide
from harness.scenario.model import Scenario
from tests.harness.test_accounting import _ledger, _store


def _monitor(tmp_path: Path, metrics: dict[str, dict[str, float]]) -> Monitor:
    monitor = Monitor(runtime=None, ledger=None, influx_db="p", shadow_db="s",  # type: ignore[arg-type]
                      run_dir=tmp_path, started_ns=0, phase=lambda: "x",
                      routing=lambda: (0, False))
    monitor._last_metrics = metrics  # what the last scrapes saw
    return monitor


def test_dead_letters_are_read_from_each_services_last_metrics(tmp_path: Path) -> None:
    monitor = _monitor(tmp_path, {
        "ingestion": {"cutover_dead_letters": 0.0, "cutover_events_received_total": 90.0},
        "enrichment": {"cutover_dead_letters": 3.0},
        "storage": {'cutover_events_dead_lettered_total{db="ha"}': 2.0,
                    'cutover_events_dead_lettered_total{db="ha_shadow"}': 1.0},
    })
    assert monitor.dead_letters() == {"enrichment": 3, "storage": 3}
    assert dead_letter_notes(monitor.dead_letters()) == [
        'enrichment dead-lettered 3 event(s); its log says why ("refused by the receiver" '
        'or "dead-lettered")',
        'storage dead-lettered 3 event(s); its log says why ("refused by the receiver" '
        'or "dead-lettered")',
    ]


def test_a_loss_verdict_names_the_dead_letters_after_the_lost_ids() -> None:
    ledger, changes = _ledger(10)
    acc = account(ledger, _store(changes[:8]), None, phase_of=lambda t: "switch",
                  owner_of=lambda e, t: "new")
    scenario = Scenario.model_validate(yaml.safe_load(
        "name: t\nphases:\n  - name: a\n    steps:\n      - hold: 1s\n"))
    evidence: list[Any] = dead_letter_notes({"enrichment": 2})
    no_loss = SloResult(threshold="lost == 0", metric="lost", target=0, measured=2,
                        passed=False)
    verdict = decide(scenario, acc, [no_loss], Rollback(), None, evidence)
    assert not verdict.passed
    lost = next(i for i, r in enumerate(verdict.reasons) if r.startswith("2 event(s) lost"))
    assert verdict.reasons[lost + 1].startswith("enrichment dead-lettered 2 event(s)")
