"""Every row of FAILURE_MODES.md, as a mutant of the pipeline run against the scenario that must
catch it: the verdict must fail, and fail for the row's reason, naming the events.

``pytest -k mutant`` runs them all (about six minutes on two cores); each prints its detection
row (mutant, scenario, caught, reason in the verdict's words). The unmutated pipeline passes the
same scenarios: ``python -m tests.mutants.clean_runs --runs 10``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from harness.results import EventFinding, RunResult
from pipeline.common.events import EventKey
from pipeline.common.normalise import parse_time
from simulators.home_assistant.ledger import Ledger

from . import MUTANTS
from .running import REPORTS, run_mutant
from .running import services as _services

_ID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")


# -- what each row's verdict must say -----------------------------------------------------------


def _reason(result: RunResult, *needles: str) -> str:
    """The first verdict reason containing every needle (case-insensitive)."""
    for reason in result.verdict.reasons:
        if all(n.lower() in reason.lower() for n in needles):
            return reason
    raise AssertionError(f"no verdict reason mentions {needles}: {result.verdict.reasons}")


_PHRASE = {"lost": "event(s) lost:", "duplicated": "event(s) duplicated:",
           "inconsistent": "event(s) stored inconsistently:"}


def _named(result: RunResult, findings: list[EventFinding], kind: str) -> str:
    """The verdict names the first findings' ids (lost and duplicated ones with their phase and
    path), and every finding carries its id, phase and path."""
    assert findings, f"no {kind} finding: {result.verdict.summary}"
    for f in findings:
        assert _ID.fullmatch(f.context_id), f
        assert f.phase and f.path in ("legacy", "new", "shadow"), f
    reason = _reason(result, _PHRASE[kind])
    for f in findings[:3]:
        # An event is named by its identity, entity and time_fired (never its shared context).
        assert f.event in reason, f"{f.event} not named in {reason!r}"
        if kind != "inconsistent":  # those are named with what differs instead
            assert f"phase {f.phase}, path {f.path}" in reason, reason
    # For the detection table: the verdict's words up to the first event it names.
    first = reason.split("; ")[0] if kind == "inconsistent" else reason.split("), ")[0] + ")"
    return first + (" ..." if len(findings) > 1 else "")


def _slo_failed(result: RunResult, metric: str) -> str:
    slo = next((s for s in result.slos if s.metric == metric), None)
    assert slo is not None, f"the scenario has no {metric} SLO"
    assert not slo.passed, f"SLO {slo.threshold} held: measured {slo.measured}"
    return _reason(result, f"SLO {slo.threshold}")


def _log(run_dir: Path, service: str) -> str:
    return (run_dir / "logs" / f"{service}.log").read_text(errors="replace")


def _ledger(run_dir: Path) -> Ledger:
    return Ledger.load(run_dir / "ledger.jsonl")


def check_01(result: RunResult, run_dir: Path) -> str:
    lost = _named(result, result.findings.lost, "lost")
    assert all(f.path == "new" for f in result.findings.lost)
    errors = _slo_failed(result, "error_rate")
    enrichment = _log(run_dir, "enrichment")
    assert "HTTP 500" in enrichment, "enrichment never met a 500"
    assert "breaker towards storage closed -> open" in enrichment, "the breaker never opened"
    return f"{errors}; {lost} (enrichment: HTTP 500 from storage, breaker open)"


def check_02(result: RunResult, run_dir: Path) -> str:
    lost = _named(result, result.findings.lost, "lost")
    ledger = _ledger(run_dir)
    removals = {e.key for e in ledger if e.state is None and e.connections}
    assert removals, "the fleet removed no entity"
    states = {f.event: ledger.find(EventKey(f.entity_id, parse_time(f.time_fired))).state
              for f in result.findings.lost}
    assert all(s is None for s in states.values()), f"lost events that are not removals: {states}"
    return f"{lost} (every one a removal: new_state null)"


def check_03(result: RunResult, run_dir: Path) -> str:
    lost = _named(result, result.findings.lost, "lost")
    assert "field type conflict" in _log(run_dir, "storage")
    return f"{lost} (storage log: InfluxDB 'field type conflict', batch dropped)"


def check_04(result: RunResult, run_dir: Path) -> str:
    lost = _named(result, result.findings.lost, "lost")
    availability = _slo_failed(result, "availability")
    refused = [r for r in _ledger(run_dir).connections
               if r.what == "closed" and r.info.get("reason") == "auth_malformed"]
    assert refused, "Home Assistant never refused a malformed auth message"
    return f"{availability}; {lost}"


def check_05(result: RunResult, run_dir: Path) -> str:
    lost = _named(result, result.findings.lost, "lost")
    assert all(f.path == "new" for f in result.findings.lost)
    return lost


def check_06(result: RunResult, run_dir: Path) -> str:
    dup = _named(result, result.findings.duplicated, "duplicated")
    assert all(re.search(r"delivered 2 times to connection c\d+", f.detail)
               for f in result.findings.duplicated), result.findings.duplicated[:3]
    return f"{dup} ({result.findings.duplicated[0].detail})"


def _fired_s(result: RunResult, finding: EventFinding) -> float:
    return (datetime.fromisoformat(finding.time_fired).timestamp()
            - datetime.fromisoformat(result.started_at).timestamp())


def check_07(result: RunResult, run_dir: Path) -> str:
    lost = _named(result, result.findings.lost, "lost")
    faults = [m.t_s for m in result.markers if m.kind == "fault" and "influxdb_outage" in m.label]
    assert len(faults) == 2, result.markers
    start, healed = faults
    outside = [f for f in result.findings.lost if not start - 1 <= _fired_s(result, f) <= healed]
    assert not outside, f"lost outside the outage ({start:.1f}-{healed:.1f} s): {outside[:3]}"
    return f"{lost} (all fired during the InfluxDB outage, {start:.1f}-{healed:.1f} s)"


def check_08(result: RunResult, run_dir: Path) -> str:
    lost = _named(result, result.findings.lost, "lost")
    assert all(f.path == "new" for f in result.findings.lost)
    kill = [m.t_s for m in result.markers if m.kind == "fault" and "kill storage" in m.label]
    assert len(kill) == 2, result.markers
    start, healed = kill
    # until the breaker lets its first probe through after storage is back (a reset period)
    outside = [f for f in result.findings.lost
               if not start - 1 <= _fired_s(result, f) <= healed + 3]
    assert not outside, f"lost outside storage's outage ({start:.1f}-{healed:.1f} s): {outside[:3]}"
    return f"{lost} (all fired while storage was down, {start:.1f}-{healed:.1f} s)"


def check_09(result: RunResult, run_dir: Path) -> str:
    lost = _named(result, result.findings.lost, "lost")
    assert all(f.phase == "spike" for f in result.findings.lost), \
        {f.phase for f in result.findings.lost}
    return lost


def check_10(result: RunResult, run_dir: Path) -> str:
    availability = _slo_failed(result, "availability")
    # The status codes said OK all along: ingestion answered 200 on every scrape after it
    # first did, including the seconds in which nothing was stored.
    seen = [s.healthy["ingestion"] for s in result.timeline if "ingestion" in s.healthy]
    first_ok = seen.index(True)
    assert all(seen[first_ok:]), "ingestion's /health did say something was wrong"
    return f"{availability} (while ingestion's /health answered 200 throughout)"


def check_11(result: RunResult, run_dir: Path) -> str:
    reason = _named(result, result.findings.inconsistent, "inconsistent")
    misdated = [f for f in result.findings.inconsistent
                if "time " in f.detail and ", fired " in f.detail]
    assert misdated, result.findings.inconsistent[:3]
    # A shadow point stored at the wrong time is also missing from its right place; any other
    # finding is one this mutant cannot cause.
    dated = {(f.path, f.event) for f in misdated}
    others = [f for f in result.findings.inconsistent if f not in misdated
              and not ("missing" in f.detail and (f.path, f.event) in dated)]
    assert not others, others[:3]
    return reason


def check_12(result: RunResult, run_dir: Path) -> str:
    reason = _named(result, result.findings.inconsistent, "inconsistent")
    lossy = re.compile(r"state '(True|False)', sent '(on|off|true|false|yes|no|1|0)'", re.I)
    assert all(lossy.search(f.detail) for f in result.findings.inconsistent), \
        result.findings.inconsistent[:3]
    return reason


def check_13(result: RunResult, run_dir: Path) -> str:
    # Both things FAILURE_MODES.md asks of row 13: the latency SLO broken, and Home Assistant
    # dropping the stalled reader for back-pressure, seen in the ledger and named by the
    # verdict. At 1,000 events/s the ~4 MB of socket buffers between the two fill in seconds.
    latency = _slo_failed(result, "p95")
    drops = [r for r in _ledger(run_dir).connections if r.what == "backpressure"]
    assert drops, "no back-pressure disconnect in the ledger"
    dropped = _reason(result, f"dropped connection {drops[0].connection} for back-pressure")
    return "; ".join([latency, _named(result, result.findings.lost, "lost"), dropped])


def check_14(result: RunResult, run_dir: Path) -> str:
    lost = _named(result, result.findings.lost, "lost")
    availability = _slo_failed(result, "availability")
    assert '"message":"stored"' in _log(run_dir, "storage")
    return f"{availability}; {lost} (storage log: \"stored\")"


def check_15(result: RunResult, run_dir: Path) -> str:
    lost = _named(result, result.findings.lost, "lost")
    assert all(f.path == "new" for f in result.findings.lost), result.findings.lost[:3]
    # Each lost event shares its context with an event that was stored: merged, not missing.
    by_context: dict[str, int] = {}
    for entry in _ledger(run_dir):
        by_context[entry.context_id] = by_context.get(entry.context_id, 0) + 1
    assert all(by_context[f.context_id] > 1 for f in result.findings.lost), \
        "a lost event whose context no other event shares"
    return f"{lost} (each shares its context with a stored event)"


def check_16(result: RunResult, run_dir: Path) -> str:
    lost = _named(result, result.findings.lost, "lost")
    unrecovered = [f for f in result.findings.lost
                   if f.detail == "fired while nobody was subscribed, not recovered"]
    assert unrecovered, result.findings.lost[:3]
    assert all(f.path == "new" for f in result.findings.lost), result.findings.lost[:3]
    return f"{lost} ({len(unrecovered)} fired while nobody was subscribed, not recovered)"


def check_17(result: RunResult, run_dir: Path) -> str:
    lost = _named(result, result.findings.lost, "lost")
    assert all(f.path == "new" for f in result.findings.lost), result.findings.lost[:3]
    assert "acknowledging anyway" in _log(run_dir, "storage")
    return f"{lost} (storage answered 200 for batches its full disk refused)"


def check_18(result: RunResult, run_dir: Path) -> str:
    lost = _named(result, result.findings.lost, "lost")
    assert all(f.path == "new" for f in result.findings.lost), result.findings.lost[:3]
    # Only while storage's clock ran behind: every lost event fired during the 25% step.
    assert {f.phase for f in result.findings.lost} == {"traffic_switch"}, result.findings.lost[:3]
    return f"{lost} (refused as 'from the future' while storage's clock ran 30 s behind)"


def check_19(result: RunResult, run_dir: Path) -> str:
    dup = _named(result, result.findings.duplicated, "duplicated")
    both = [f for f in result.findings.duplicated if "written by legacy and by new" in f.detail]
    assert both, result.findings.duplicated[:3]
    if result.rollback.triggered:  # live, legacy is seen writing what new owns
        assert re.search(r"written by legacy(, owned by new at \d+%| and by new)",
                         result.rollback.evidence or ""), result.rollback.evidence
    return f"{dup} ({len(both)} written by legacy and by new)"


def check_20(result: RunResult, run_dir: Path) -> str:
    reason = _named(result, result.findings.inconsistent, "inconsistent")
    assert all(f.detail.startswith("shadow: missing (owned by legacy")
               for f in result.findings.inconsistent), result.findings.inconsistent[:3]
    assert result.counts.lost == 0, "production should be whole: only the shadow is sampled"
    return reason


def check_21(result: RunResult, run_dir: Path) -> str:
    dup = _named(result, result.findings.duplicated, "duplicated")
    assert all(f.detail.startswith("written again by new")
               for f in result.findings.duplicated), result.findings.duplicated[:3]
    return f"{dup} (storage's own write count)"


# -- the cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    row: int
    module: str
    services: tuple[str, ...]
    scenario: str
    check: Callable[[RunResult, Path], str]

    @property
    def defect(self) -> str:
        return self.module.split("_", 1)[1]

    @property
    def id(self) -> str:
        return f"mutant-{self.row:02d}-{self.defect}"


_CHECKS = {n: globals()[f"check_{n:02d}"] for n in MUTANTS}
CASES = [Case(row, module, _services(row), scenario, _CHECKS[row])
         for row, (module, _, scenario) in sorted(MUTANTS.items())]


def _row(case: Case, caught: bool, reason: str, seconds: float) -> str:
    text = re.sub(r"\s+", " ", reason)
    return (f"| {case.row} | {case.module} | {case.scenario} | {'yes' if caught else 'NO'} | "
            f"{text[:400]} | {seconds:.0f} s |")


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_mutant(case: Case, capsys: pytest.CaptureFixture[str],
                record_property: Callable[[str, object], None]) -> None:
    result, run_dir, seconds = run_mutant(
        case.scenario, {svc: f"tests.mutants.{case.module}" for svc in case.services}, REPORTS)
    record_property("report", str(run_dir / "report.html"))
    caught, reason = False, result.verdict.summary
    try:
        assert not result.verdict.passed, f"mutant not caught: {result.verdict.summary}"
        reason = case.check(result, run_dir)
        if result.rollback.triggered:
            reason += f"; rollback triggered by {result.rollback.trigger}"
        caught = True
    finally:
        with capsys.disabled():
            print(f"\n{_row(case, caught, reason, seconds)}\n  report: {run_dir / 'report.html'}")

