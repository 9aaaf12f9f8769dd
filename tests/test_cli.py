"""The `cutover` command line: one-line errors for bad input, fake-ha serving until Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def cutover(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize("args, expected", [
    (["--rate", "abc"], "expected a number of events per second"),
    (["--port", "99999"], "99999"),
    (["--entities", "0"], "0"),
    (["--rate", "ramp:oops"], "ramp"),
    (["--bogus"], "--bogus"),
])
def test_bad_arguments_get_one_line_saying_what_is_expected(args, expected):
    result = cutover("fake-ha", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cutover fake-ha: ")
    assert expected in lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_fake_ha_serves_until_ctrl_c_and_prints_totals(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "fake-ha", "--port", str(port), "--rate", "50/s",
         "--ledger", str(tmp_path / "ledger.jsonl")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped after" in err and "fired" in err
    assert (tmp_path / "ledger.jsonl").stat().st_size > 0


def test_demo_emits_and_receives_everything(tmp_path):
    result = cutover("demo", "--seconds", "2", "--rate", "100/s", "--report-dir", str(tmp_path),
                     timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every emitted event was received exactly once" in result.stdout
