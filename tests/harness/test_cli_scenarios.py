"""`cutover run/list/schema/report`: exit codes and messages for people."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def ours(tmp_path: Path) -> list:
    """Processes whose command line or environment points into ``tmp_path`` (the services get
    their data directory there, influxd its config)."""
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            texts = [*(p.info["cmdline"] or []), *p.environ().values()]
        except (psutil.Error, OSError):
            continue
        if any(str(tmp_path) in t for t in texts):
            found.append(p)
    return found


def cutover(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def test_schema_is_json_schema_of_scenarios_as_written():
    # What the schema accepts and refuses is tested in test_schema_yaml.py; here, that it is
    # the one the command prints (not the normalised model's, which refuses `load: 50/s`).
    from harness.scenario.schema import scenario_json_schema

    result = cutover("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout) == scenario_json_schema()


def test_list_shows_every_shipped_scenario():
    result = cutover("list")
    assert result.returncode == 0, result.stderr
    for name in ("full_migration", "rollback_on_error_rate", "load_soak"):
        assert name in result.stdout


def test_run_an_unknown_scenario_exits_2_with_one_line():
    result = cutover("run", "no_such_scenario")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cutover list" in lines[0]


def test_run_a_broken_scenario_exits_2_naming_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nphases:\n  - name: p\n    steps:\n      - hold: soon\n")
    result = cutover("run", str(bad))
    assert result.returncode == 2
    assert f"{bad}:5: " in result.stderr and "expected a duration" in result.stderr


def test_report_of_a_missing_run_dir_exits_2(tmp_path):
    result = cutover("report", str(tmp_path / "nothing"))
    assert result.returncode == 2 and "nothing" in result.stderr


@pytest.mark.slow
def test_a_run_passes_writes_its_report_and_leaves_no_process(tmp_path):
    scenario = tmp_path / "quick.yaml"
    scenario.write_text(
        "name: quick\ntime_scale: 0.01\nload: 40/s\nfleet: {entities: 50}\n"
        "phases:\n  - name: only\n    steps:\n"
        "      - start: [influxdb, admin, legacy, weather, storage, enrichment, ingestion]\n"
        "      - wait_healthy: all\n      - shadow: on\n      - traffic: {steps: [50], hold: 5m}\n")
    result = cutover("run", str(scenario), "--runtime", "process", "--report-dir",
                     str(tmp_path / "reports"), timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PASSED quick" in result.stderr
    reports = list((tmp_path / "reports").glob("quick-*/report.html"))
    assert len(reports) == 1
    again = cutover("report", str(reports[0].parent))
    assert again.returncode == 0 and again.stdout.strip().endswith("report.html")
    leftovers = ours(tmp_path)
    assert not leftovers, [p.info["cmdline"] for p in leftovers]


@pytest.mark.slow
def test_ctrl_c_leaves_no_orphan_process(tmp_path):
    import signal
    import time

    import psutil

    scenario = tmp_path / "long.yaml"
    scenario.write_text(
        "name: long\nload: 20/s\nfleet: {entities: 20}\nphases:\n  - name: only\n    steps:\n"
        "      - start: [influxdb, admin, legacy, storage]\n      - hold: 10m\n")
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(scenario),
                             "--runtime", "process", "--report-dir", str(tmp_path / "r")],
                            cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def children() -> list[psutil.Process]:
        return [p for p in ours(tmp_path) if p.pid != proc.pid and p.is_running()
                and p.status() != psutil.STATUS_ZOMBIE]

    deadline = time.monotonic() + 30
    while len(children()) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(children()) >= 3, "the services did not start"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while children() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not children(), [p.info["cmdline"] for p in children()]
