"""``cutover calibrate``: what it fits from a run directory, and what it says when it cannot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from simulators.des.calibration import CalibrationError, fit_run_dir, load_calibration
from simulators.des.params import ModelParams


def make_run_dir(root: Path, *, legacy: bool = True, batches_vary: bool = False,
                 simulated: bool = False) -> Path:
    run_dir = root / "phase3-real"
    run_dir.mkdir()
    latency = {"new": {"count": 1000, "p50_ms": 3.8, "p95_ms": 7.7, "p99_ms": 11.5,
                       "max_ms": 25.0},
               "shadow": {"count": 700, "p50_ms": 4.7, "p95_ms": 9.1, "p99_ms": 13.5,
                          "max_ms": 21.0}}
    if legacy:
        latency["legacy"] = {"count": 800, "p50_ms": 20.7, "p95_ms": 23.8, "p99_ms": 28.9,
                             "max_ms": 32.0}
    run = {"scenario": "phase3_traffic_switch", "runtime": "process", "time_scale": 0.02,
           "started_at": "2026-01-01T00:00:00+00:00", "simulated": simulated,
           "counts": {"emitted": 1862}, "latency": latency, "rollback": {"triggered": False},
           "markers": [{"t_s": 0.1, "kind": "service", "label": "start storage"},
                       {"t_s": 0.2, "kind": "service", "label": "start ingestion"},
                       {"t_s": 2.4, "kind": "service", "label": "healthy: storage, ingestion"},
                       {"t_s": 9.0, "kind": "service", "label": "start storage"},
                       {"t_s": 9.5, "kind": "service", "label": "healthy: storage"}]}
    (run_dir / "run.json").write_text(json.dumps(run))
    lines = []
    dsum = esum = 0.0
    dcount = ecount = recv = 0
    for t in range(40):
        n = (1 + t % 4) if batches_vary else 1  # events per batch this second
        batches = 50 // n
        dcount += batches
        ecount += batches
        recv += batches * n
        dsum += batches * (0.0004 + 0.0002 * n)
        esum += batches * (0.0005 + 0.00005 * n)
        lines.append({"t_s": t + 0.1, "metrics": {
            "ingestion": {"cutover_ingest_durable_delay_seconds_sum": dsum,
                          "cutover_ingest_durable_delay_seconds_count": dcount,
                          "cutover_events_received_total": recv},
            "enrichment": {"cutover_intake_seconds_sum": esum,
                           "cutover_intake_seconds_count": ecount,
                           "cutover_events_received_total": recv}}})
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return run_dir


def test_fit_from_a_run_directory(tmp_path: Path) -> None:
    cal = fit_run_dir(make_run_dir(tmp_path))
    assert cal.version == 1 and cal.kind == "ha-cutover-calibration"
    assert cal.dists()["legacy"].quantile(95) == pytest.approx(0.0238, rel=1e-3)
    assert cal.dists()["new"].quantile(50) == pytest.approx(0.0038, rel=1e-3)
    ing = cal.services["ingestion"]
    assert ing.per_batch_ms + ing.per_event_ms == pytest.approx(0.6, rel=0.02)
    assert cal.batches["ingestion"] == pytest.approx(1.0)
    assert cal.startup_s["storage"] == pytest.approx(2.3)
    assert cal.restart_s["storage"] == pytest.approx(0.5)
    params = cal.apply(ModelParams())
    assert params.service_times["ingestion"].per_batch == pytest.approx(ing.per_batch_ms / 1000)
    assert params.restart_s["storage"] == pytest.approx(0.5)


def test_batch_sizes_that_vary_separate_per_batch_and_per_event_costs(tmp_path: Path) -> None:
    cal = fit_run_dir(make_run_dir(tmp_path, batches_vary=True))
    ing = cal.services["ingestion"]
    assert "least squares" in ing.method
    assert ing.per_batch_ms == pytest.approx(0.4, abs=0.02)
    assert ing.per_event_ms == pytest.approx(0.2, abs=0.01)


def test_save_and_load(tmp_path: Path) -> None:
    cal = fit_run_dir(make_run_dir(tmp_path))
    cal.save(tmp_path / "cal.json")
    assert load_calibration(tmp_path / "cal.json") == cal


@pytest.mark.parametrize("broken, message", [
    (lambda d: (d / "run.json").unlink(), "run.json (the run's result) is missing"),
    (lambda d: (d / "metrics.jsonl").unlink(), "metrics.jsonl (the monitor's scrapes) is missing"),
    (lambda d: (d / "run.json").write_text("{"), "not JSON"),
    (lambda d: (d / "metrics.jsonl").write_text("{}\n"), "fewer than 3 scrapes"),
])
def test_what_is_missing_is_named(tmp_path: Path, broken: object, message: str) -> None:
    run_dir = make_run_dir(tmp_path)
    broken(run_dir)  # type: ignore[operator]
    with pytest.raises(CalibrationError, match=re.escape(message)):
        fit_run_dir(run_dir)


def test_a_run_without_legacy_latency_says_which_run_to_use(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="latency for legacy is missing.*phase3_traffic"):
        fit_run_dir(make_run_dir(tmp_path, legacy=False))


def test_a_simulated_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="simulated run; calibrate from a real one"):
        fit_run_dir(make_run_dir(tmp_path, simulated=True))


def test_a_calibration_file_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"version": 9, "latency": {}}))
    with pytest.raises(CalibrationError, match="version 9.*calibrate again"):
        load_calibration(path)
    with pytest.raises(CalibrationError, match="no such calibration file"):
        load_calibration(tmp_path / "nope.json")


def test_cli_calibrate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cal.json"
    with pytest.raises(SystemExit) as exit_:
        main(["calibrate", str(make_run_dir(tmp_path)), "-o", str(out)])
    assert exit_.value.code == 0
    source = load_calibration(out).source
    assert source is not None and source.scenario == "phase3_traffic_switch"
    with pytest.raises(SystemExit) as exit_:
        main(["calibrate", str(tmp_path / "nowhere"), "-o", str(out)])
    assert exit_.value.code == 2
    assert "not a directory" in capsys.readouterr().err
