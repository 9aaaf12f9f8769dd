"""The SimPy model's mechanics, each on a small scenario: reproducible from a seed, Home
Assistant's back-pressure, the breaker, durable queues through an outage, a bounded buffer's
drops counted as loss, random failures, and the fault vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.des.params import LegacyParams, ModelParams, Reliability

from .helpers import ALL, model, run, scenario


def _switched(tmp_path: Path, hold: str, extra_steps: str = "", load: str = "50/s",
              triggers: str = "", rollback: str = "") -> object:
    return scenario(tmp_path, f"""
        name: t
        load: {load}
        fleet: {{entities: 200, seed: 3}}
        slos: ["loss == 0"]
        {triggers}
        {rollback}
        phases:
          - name: foundation
            steps:
              - start: {ALL}
              - wait_healthy: all
              - traffic: {{steps: [100], hold: 5s}}
          - name: main
            steps:
              {extra_steps}
              - hold: {hold}
        """)


def test_same_seed_same_outcome_other_seed_other_draws(tmp_path: Path) -> None:
    sc = scenario(tmp_path, """
        name: t
        fleet: {entities: 200, seed: 3}
        load: 50/s
        phases:
          - name: a
            steps:
              - start: [influxdb, admin, legacy, weather, storage, enrichment, ingestion]
              - wait_healthy: all
              - shadow: on
              - traffic: {steps: [10, 50], hold: 20s}
        """)
    a, b, c = run(sc, seed=7), run(sc, seed=7), run(sc, seed=8)
    assert a.counts == b.counts
    assert a.latency == b.latency
    assert [(m.t_s, m.label) for m in a.markers] == [(m.t_s, m.label) for m in b.markers]
    assert [s.__dict__ if hasattr(s, "__dict__") else s for s in a.samples] == \
        [s.__dict__ if hasattr(s, "__dict__") else s for s in b.samples]
    # Another seed draws other owners for the same events (the split is random per event).
    assert a.counts["emitted"] == c.counts["emitted"]
    assert a.latency["new"].count != c.latency["new"].count


def test_counts_follow_the_profile_and_nothing_is_lost_at_rest(tmp_path: Path) -> None:
    out = run(_switched(tmp_path, "60s"), seed=1)
    c = out.counts
    assert c["lost"] == 0 and c["stored_production"] == c["expected"] == c["emitted"]
    # 50/s over the load span (5 s switch + 60 s hold), as the Pacer fires: floor(rate * t).
    assert abs(c["emitted"] - 50 * 65) <= 50
    assert out.throughput_eps == pytest.approx(50, rel=0.02)
    assert out.error_rate == 0 and out.availability == 1.0


def test_backpressure_drops_a_client_that_reads_slower_than_arrivals(tmp_path: Path) -> None:
    """Ingestion reads 100 events/s, Home Assistant fires 500/s: its send queue passes 1,024
    and stays there 10 s (or reaches 4,096), and Home Assistant closes the connection; the
    client reconnects and reads what was queued back from history, but a reader that slow
    never catches up: the run ends with it still queued."""
    slow = ModelParams(read_per_event={"ingestion": 0.01})
    out = run(_switched(tmp_path, "40s", load="500/s"), seed=1, params=slow)
    assert out.backpressure_closes["ingestion"] >= 1
    assert out.backpressure_closes["legacy"] == 0
    assert any("Home Assistant dropped ingestion: back-pressure" in m.label for m in out.markers)
    assert out.lost > 1000
    assert not any("send queue" in cause for cause in out.lost_by_cause)  # recovered...
    assert any("still queued" in cause for cause in out.lost_by_cause)  # ...too late


def test_a_frozen_client_is_dropped_after_ten_seconds_above_the_peak(tmp_path: Path) -> None:
    sc = _switched(tmp_path, "60s", extra_steps="- fault: {kind: pause, service: ingestion, "
                                                "for: 40s}", load="200/s")
    out = run(sc, seed=1)
    closes = [m for m in out.markers if "Home Assistant dropped ingestion" in m.label]
    assert closes, [m.label for m in out.markers]
    # 1,024 messages at 200/s is 5.1 s after the pause; closed 10 s later.
    pause = next(m.t_s for m in out.markers if m.label.startswith("pause ingestion"))
    assert closes[0].t_s - pause == pytest.approx(5.12 + 10, abs=0.5)
    # What Home Assistant dropped with its queue, and fired until the client came back, is
    # read back from history once the paused client resumes and subscribes again.
    assert out.counts["unsubscribed"] > 0 or out.backpressure_closes["ingestion"] > 0
    assert out.lost == 0, out.lost_by_cause


def test_breaker_opens_when_storage_dies_and_events_wait_in_the_outbox(tmp_path: Path) -> None:
    sc = _switched(tmp_path, "60s", extra_steps="- kill: storage")
    m = model(sc, seed=3)
    m.start()
    kill_at = None
    while m.env.peek() < 200 and kill_at is None:
        m.env.step()
        if not m.services["storage"].running and m.services["storage"].starts:
            kill_at = m.env.now
    m.env.run(until=kill_at + 3.0)
    fwd = m.services["enrichment"].forwarder
    assert fwd.breaker.is_open
    assert fwd.failures >= 1
    assert fwd.outbox.depth > 50  # held, not dropped
    assert m.services["enrichment"].error_total() >= 1
    # The monitor counts what piles up behind the open breaker as errors (as the harness does).
    assert m.monitor.ticks[-1].new_errors > fwd.failures


def test_durable_queues_keep_every_event_through_an_outage(tmp_path: Path) -> None:
    sc = _switched(tmp_path, "90s", extra_steps="- fault: {kind: kill, service: storage, "
                                                "for: 30s}")
    out = run(sc, seed=2)
    assert out.lost == 0
    assert out.counts["stored_production"] == out.counts["expected"]
    # Events fired during the outage waited for storage: the tail shows it.
    assert out.latency["new"].p99_s > 5.0
    assert any(m.label.startswith("healed: kill storage") for m in out.markers)


def test_influxdb_outage_loses_what_legacy_owned_but_not_what_new_owned(tmp_path: Path) -> None:
    sc = scenario(tmp_path, f"""
        name: t
        fleet: {{entities: 200, seed: 3}}
        load: 50/s
        phases:
          - name: a
            steps:
              - start: {ALL}
              - wait_healthy: all
              - traffic: {{steps: [50], hold: 5s}}
              - fault: {{kind: influxdb_outage, for: 20s}}
              - hold: 40s
        """)
    out = run(sc, seed=1)
    assert out.lost > 0
    causes = " ".join(out.lost_by_cause)
    assert "legacy's write failed" in causes
    assert not [c for c in out.lost_by_cause if "ingestion" in c or "storage" in c]


def test_a_bounded_buffer_that_overflows_counts_as_loss(tmp_path: Path) -> None:
    """Legacy's in-memory buffer holds 50 events here; with InfluxDB slow to answer, it fills
    and the events beyond it are dropped (buffer_full): lost, and counted as errors."""
    sc = scenario(tmp_path, f"""
        name: t
        fleet: {{entities: 200, seed: 3}}
        load: 200/s
        phases:
          - name: a
            steps:
              - start: {ALL}
              - wait_healthy: all
              - fault: {{kind: latency, hop: legacy-influxdb, latency: 2s, for: 10s}}
              - hold: 20s
        """)
    small = ModelParams(legacy=LegacyParams(max_buffer=50))
    out = run(sc, seed=1, params=small)
    assert out.lost > 0
    assert out.lost_by_cause.get("legacy's buffer full (buffer_full)", 0) > 0
    assert out.services["legacy"]["cutover_events_dropped_total"] >= \
        out.lost_by_cause["legacy's buffer full (buffer_full)"]
    assert out.error_rate > 0


def test_ha_faults_lose_what_was_fired_while_nobody_listened(tmp_path: Path) -> None:
    sc = _switched(tmp_path, "30s", extra_steps="- fault: {kind: ha_restart, downtime: 5s}")
    out = run(sc, seed=1)
    assert out.counts["unsubscribed"] > 0  # fired while both clients were reconnecting
    assert out.counts["expected"] == out.counts["emitted"]  # zero loss counts them too


def test_not_modelled_faults_are_said_so(tmp_path: Path) -> None:
    sc = _switched(tmp_path, "20s", extra_steps="- fault: {kind: bandwidth, hop: "
                                                "storage-influxdb, rate: 10}\n"
                                                "              - fault: {kind: weather_slow, "
                                                "delay: 2s, for: 5s}")
    out = run(sc, seed=1)
    assert any("bandwidth" in n for n in out.not_modelled)
    assert any("weather_slow" in n and "no effect" in n for n in out.not_modelled)
    assert any("(not modelled:" in m.label for m in out.markers)


@pytest.mark.parametrize("fault", [
    "{kind: clock_skew, service: storage, offset: -30s, for: 5s}",
    "{kind: disk_full, service: [storage, enrichment], size: 32MiB, for: 5s}",
])
def test_host_faults_are_said_not_modelled_rather_than_crashing(tmp_path: Path,
                                                                fault: str) -> None:
    out = run(_switched(tmp_path, "10s", extra_steps=f"- fault: {fault}"), seed=1)
    kind = fault.split(",")[0].removeprefix("{kind: ")
    assert any(n.startswith(kind) for n in out.not_modelled), out.not_modelled


def test_every_fault_kind_is_simulated_or_said_not_to_be() -> None:
    """A kind added to the scenario language without a place in the model would crash a
    simulation with a bare AssertionError; this finds it first."""
    import inspect

    from harness.scenario.faults import FAULT_KINDS
    from simulators.des import faults

    source = inspect.getsource(faults.FaultInjector._apply)
    unplaced = [k for k in FAULT_KINDS if k not in faults.NOT_MODELLED
                and k not in faults.NO_EFFECT and f'"{k}"' not in source]
    assert not unplaced, f"fault kinds the simulator neither models nor names: {unplaced}"


def test_random_failures_from_mtbf_and_mttr(tmp_path: Path) -> None:
    params = ModelParams(reliability={"storage": Reliability(mtbf_s=60, mttr_s=5)})
    out = run(_switched(tmp_path, "600s"), seed=4, params=params)
    crashes = [m for m in out.markers if m.label.startswith("random failure: storage")]
    assert 3 <= len(crashes) <= 25  # ~10 expected over 10 minutes
    assert out.lost == 0  # storage's queues are durable


def test_rollback_trigger_fires_and_rollback_steps_run(tmp_path: Path) -> None:
    sc = scenario(tmp_path, f"""
        name: t
        fleet: {{entities: 200, seed: 5}}
        load: 50/s
        slos: ["loss == 0"]
        triggers: ["error_rate > 1%"]
        rollback:
          - rollback: errors
          - start: storage
          - wait_healthy: storage
          - hold: 30s
        phases:
          - name: a
            steps:
              - start: {ALL}
              - wait_healthy: all
              - shadow: on
              - traffic: {{steps: [10], hold: 30s}}
              - kill: storage
              - traffic: {{steps: [25, 50], hold: 60s}}
        expect: {{verdict: pass, rollback: triggered, reason: error_rate}}
        """)
    out = run(sc, seed=1)
    assert out.rollback.triggered and out.rollback.trigger == "error_rate"
    assert "new pipeline's error rate" in out.rollback.evidence
    assert [p.name for p in out.phases][-1] == "rollback"
    assert out.lost == 0


def test_time_scale_and_load_scale(tmp_path: Path) -> None:
    sc = _switched(tmp_path, "100s")
    base = run(sc, seed=1)
    stretched = run(sc, seed=1, time_scale=10.0, load_scale=0.1)
    assert stretched.duration_s > 9 * (base.duration_s - 5)
    assert stretched.counts["emitted"] == pytest.approx(base.counts["emitted"], rel=0.05)


def test_a_gate_judges_the_whole_hold_not_only_its_last_seconds(tmp_path: Path) -> None:
    """Slow writes in the first two minutes of a five-minute step fail its p95 gate at the end,
    as the real gate (over every point since the step began) would."""
    sc = scenario(tmp_path, f"""
        name: t
        fleet: {{entities: 200, seed: 3}}
        load: 50/s
        triggers: ["error_rate > 50%"]
        phases:
          - name: a
            steps:
              - start: {ALL}
              - wait_healthy: all
              - fault: {{kind: latency, hop: enrichment-storage, latency: 500ms, for: 2m}}
              - traffic: {{steps: [100], hold: 5m, gate: ["p(95) < 100ms"]}}
        """)
    out = run(sc, seed=1)
    assert out.rollback.triggered and out.rollback.trigger == "gate"
    assert "gate p(95) < 100ms failed" in out.rollback.evidence
