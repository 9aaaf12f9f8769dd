"""Ctrl-C (SIGINT) and SIGTERM during `cutover run`: a partial run.json and report marked
interrupted, the summary line, exit 130, and no process left behind (issue 16)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.checks.accounting import Accounting
from harness.results import Counts, Findings, Rollback, Verdict
from harness.runner.interrupt import PLAN, WIND_DOWN, Interrupt
from harness.runner.verdict import Interruption, decide, summary_line
from harness.scenario.model import Scenario

ROOT = Path(__file__).resolve().parents[2]


# -- the stages, on this process's own signals ---------------------------------------------------


def test_first_signal_stops_the_plan_second_the_wind_down_third_quits():
    said: list[str] = []

    async def scenario() -> None:
        interrupt = Interrupt(say=said.append)
        interrupt.install()
        try:
            reached = asyncio.Event()

            async def forever() -> str:
                reached.set()
                await asyncio.sleep(3600)
                return "never"

            async def send_when_reached(sig: signal.Signals) -> None:
                await reached.wait()
                os.kill(os.getpid(), sig)

            sender = asyncio.ensure_future(send_when_reached(signal.SIGTERM))
            assert await interrupt.guard(PLAN, forever()) == (False, None)
            await sender
            assert interrupt.signal_name == "SIGTERM" and interrupt.count == 1
            # Past the first signal, a later plan stage does not start at all...
            assert await interrupt.guard(PLAN, forever()) == (False, None)

            # ...while the wind-down runs until the second signal.
            async def quick() -> int:
                return 7
            assert await interrupt.guard(WIND_DOWN, quick()) == (True, 7)
            reached.clear()
            sender = asyncio.ensure_future(send_when_reached(signal.SIGINT))
            assert await interrupt.guard(WIND_DOWN, forever()) == (False, None)
            await sender
            assert interrupt.count == 2 and interrupt.signal_name == "SIGTERM"
            os.kill(os.getpid(), signal.SIGINT)  # the third leaves the event loop at once
            await asyncio.sleep(5)
        finally:
            interrupt.uninstall()

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(scenario())
    assert len(said) == 2 and "SIGTERM" in said[0] and "without accounting" in said[1]


def test_not_installed_it_never_fires_and_a_callers_cancel_goes_through():
    async def scenario() -> None:
        interrupt = Interrupt()

        async def slow() -> None:
            await asyncio.sleep(3600)

        task = asyncio.ensure_future(interrupt.guard(PLAN, slow()))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not interrupt.requested

    asyncio.run(scenario())


# -- what the verdict and the summary line say -----------------------------------------------------


def _scenario() -> Scenario:
    return Scenario.model_validate({"name": "x", "phases": [{"name": "p", "steps": []}]})


def test_an_interrupted_verdict_is_not_a_pass_and_says_what_was_measured():
    acc = Accounting(Counts(emitted=120, expected=120, stored_production=118, lost=2),
                     Findings(), {}, False)
    stop = Interruption(by="Ctrl-C (SIGINT)", at_s=12.25, where="phase canary", accounted=True,
                        drained=False)
    verdict = decide(_scenario(), acc, [], Rollback(), interrupted=stop)
    assert not verdict.passed
    assert verdict.summary.startswith("INTERRUPTED: by Ctrl-C (SIGINT) at 12.2 s in phase canary")
    assert "120 events fired, 118 in production; lost 2" in verdict.summary
    assert any("still have been on their way" in r for r in verdict.reasons)
    skipped = decide(_scenario(), acc, [], Rollback(),
                     interrupted=Interruption("SIGTERM", 1.0, "phase p", False, False))
    assert "not accounted" in skipped.summary and "lost" not in skipped.summary


@pytest.mark.parametrize(("summary", "line"), [
    ("PASSED (SLOs met, no rollback): 10 events fired.",
     ("PASSED", "quick (SLOs met, no rollback): 10 events fired.")),
    ("FAILED: 1 event(s) lost. 10 events fired.",
     ("FAILED", "quick: 1 event(s) lost. 10 events fired.")),
    ("INTERRUPTED: by SIGTERM at 1.0 s. So far 3 events fired.",
     ("INTERRUPTED", "quick: by SIGTERM at 1.0 s. So far 3 events fired.")),
])
def test_the_summary_line_says_the_status_once(summary, line):
    verdict = Verdict(passed=summary.startswith("PASSED"), summary=summary)
    assert summary_line("quick", verdict) == line


def _fake_run(passed: bool, summary: str, *, signal_first: bool = False):
    """A stand-in for `run_scenario`: a result without any service (optionally after a real
    SIGINT to this process, as a person's Ctrl-C during the run)."""
    from harness.results import RunResult

    async def run_scenario(scenario, *, report_dir: Path, interrupt=None, **_: object):
        if signal_first:
            os.kill(os.getpid(), signal.SIGINT)
            while interrupt is None or not interrupt.requested:
                await asyncio.sleep(0.01)
        result = RunResult(scenario=scenario.name, runtime="process", started_at="2026-01-01",
                           duration_s=1.0, time_scale=1.0, expected="SLOs met, no rollback",
                           verdict=Verdict(passed=passed, summary=summary), counts=Counts(),
                           findings=Findings(), interrupted=signal_first)
        return result, report_dir / "quick-1"
    return run_scenario


def _quick(tmp_path: Path) -> Path:
    path = tmp_path / "quick.yaml"
    path.write_text("name: quick\nphases:\n  - name: only\n    steps:\n      - hold: 1s\n")
    return path


def test_cutover_run_says_passed_once(tmp_path, monkeypatch, capsys):
    from harness.commands import run as command

    monkeypatch.setattr(command, "run_scenario", _fake_run(
        True, "PASSED (SLOs met, no rollback): 10 events fired."))
    status = asyncio.run(command.run_many([_quick(tmp_path)], runtime="process",
                                          time_scale=None, report_dir=tmp_path))
    err = " ".join(capsys.readouterr().err.split())
    assert status == 0
    assert "PASSED quick (SLOs met, no rollback): 10 events fired." in err
    assert err.count("PASSED") == 1, err


def test_cutover_run_interrupted_prints_the_summary_and_exits_130(tmp_path, monkeypatch, capsys):
    from harness.commands import run as command

    monkeypatch.setattr(command, "run_scenario", _fake_run(
        False, "INTERRUPTED: by Ctrl-C (SIGINT) at 1.0 s in phase only, before the plan "
               "finished. So far 3 events fired.", signal_first=True))
    status = asyncio.run(command.run_many([_quick(tmp_path), _quick(tmp_path)],
                                          runtime="process", time_scale=None,
                                          report_dir=tmp_path))
    err = " ".join(capsys.readouterr().err.split())
    assert status == 130
    assert "INTERRUPTED quick: by Ctrl-C (SIGINT) at 1.0 s" in err
    assert err.count("INTERRUPTED") == 1, err  # the second scenario did not start
    assert "1 scenario(s) not started" in err


# -- `cutover run` in a subprocess, interrupted ----------------------------------------------------


def _ours(tmp_path: Path, parent: int) -> list:
    """Live processes (not zombies) whose command line or environment points into
    ``tmp_path``, other than the harness itself: the run's services and InfluxDB."""
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline"]):
        if p.pid == parent:
            continue
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            texts = [*(p.info["cmdline"] or []), *p.environ().values()]
        except (psutil.Error, OSError):
            continue
        if any(str(tmp_path) in t for t in texts):
            found.append(p)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_writes_a_partial_result_and_exits_130(tmp_path, sig):
    scenario = tmp_path / "held.yaml"
    scenario.write_text(
        "name: held\nload: 10/s\nfleet: {entities: 10}\nphases:\n  - name: only\n    steps:\n"
        "      - start: [influxdb, admin, legacy, weather, storage, enrichment, ingestion]\n"
        "      - wait_healthy: all\n      - shadow: on\n"
        "      - traffic: {steps: [50], hold: 10m}\n")
    reports = tmp_path / "reports"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(scenario),
                             "--runtime", "process", "--report-dir", str(reports)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        # Running: the services are up and the load is on (Home Assistant fired events).
        deadline = time.monotonic() + 90
        ledger = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = list(reports.glob("held-*/ledger.jsonl"))
            if found and '"k":"event"' in found[0].read_text():
                ledger = found[0]
                break
            time.sleep(0.2)
        assert ledger is not None, "the run did not start firing events"
        assert len(_ours(tmp_path, proc.pid)) >= 3, "the services are not running"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err[-3000:]
    run_dir = ledger.parent
    result = json.loads((run_dir / "run.json").read_text())
    assert result["interrupted"] is True
    assert result["verdict"]["passed"] is False
    assert result["counts"]["emitted"] > 0
    assert (run_dir / "report.html").is_file()
    lines = [line for line in err.splitlines() if line.startswith("INTERRUPTED held")]
    assert len(lines) == 1, err[-3000:]
    # Whatever the width the output was wrapped at:
    assert "events fired" in " ".join(err.split()), err[-3000:]
    assert f"report:{run_dir / 'report.html'}" in "".join(err.split()), err[-3000:]
    deadline = time.monotonic() + 10  # the kernel reaps a killed child asynchronously
    while _ours(tmp_path, proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _ours(tmp_path, proc.pid)
    assert not left, [p.info["cmdline"] for p in left]
