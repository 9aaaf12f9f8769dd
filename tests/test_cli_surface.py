"""The command line as a new user meets it (issue 16): --version, validate, schema, list and
list --json, one line per message outside a terminal, the live line's ETA, the status word
said once, one duration syntax, and fake-ha's token."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import click
import orjson
import pytest
import websockets
from click.testing import CliRunner

from harness.cli import cli
from harness.scenario import load_scenario

ROOT = Path(__file__).parents[1]
SCENARIOS = ROOT / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.yaml"))
GOOD = ("name: good\nphases:\n  - name: p\n    steps:\n      - hold: 1m\n")


def cutover(*args: str, columns: int = 80, timeout: float = 60,
            cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The real entry point in a child process whose stdout and stderr are pipes (not a TTY),
    at a given terminal width."""
    env = {**os.environ, "COLUMNS": str(columns)}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env, check=False)


def invoke(*args: str, columns: int = 80) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": str(columns)},
                              catch_exceptions=False)


# -- 1. --version -------------------------------------------------------------------------------


def test_version_is_the_installed_distributions():
    result = cutover("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"cutover {version('ha-cutover')}"


# -- 2. validate ----------------------------------------------------------------------------


def test_validate_the_shipped_scenarios_exits_0():
    result = invoke("validate", *map(str, SHIPPED))
    assert result.exit_code == 0, result.output
    assert not [line for line in result.output.splitlines() if ": error: " in line]
    assert result.output.splitlines()[-1].startswith(f"{len(SHIPPED)} files checked: ")


def test_validate_prints_every_problem_of_every_file_then_a_summary(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: typo\nphases:\n  - name: p\n    steps:\n      - hold: soon\n"
                    "      - traffic: {steps: [10], hold: later}\n")
    worse = tmp_path / "worse.yaml"
    worse.write_text("name: worse\nbogus_key: 1\nphases: []\n")
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    result = invoke("validate", str(typo), str(good), str(worse),
                    str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    lines = result.output.splitlines()
    # both errors of the first file, not only the first one
    assert any(line.startswith(f"{typo}:5: error: ") for line in lines), lines
    assert any(line.startswith(f"{typo}:6: error: ") for line in lines), lines
    assert any(line.startswith(f"{worse}:2: error: ") and "bogus_key" in line
               for line in lines), lines
    assert any(line.startswith(f"{tmp_path / 'missing.yaml'}: error: ") for line in lines)
    assert not any(line.startswith(str(good)) for line in lines)
    assert re.fullmatch(r"4 files checked: \d+ errors in 3 files", lines[-1]), lines[-1]


def test_validate_warnings_alone_exit_0(tmp_path):
    # steps that do not increase: runs, but not as meant
    odd = tmp_path / "odd.yaml"
    odd.write_text("name: odd\nphases:\n  - name: p\n    steps:\n"
                   "      - traffic: {steps: [50, 10, 100], hold: 1m}\n")
    result = invoke("validate", str(odd))
    assert result.exit_code == 0, result.output
    assert f"{odd}:5: warning: " in result.output
    warnings = sum(": warning: " in line for line in result.output.splitlines())
    assert result.output.splitlines()[-1] == (
        f"1 file checked: no errors, {warnings} warning{'s' if warnings > 1 else ''}")


# -- 3. schema ------------------------------------------------------------------------------


def test_schema_prints_the_schema_of_files_as_written():
    from harness.scenario.schema import scenario_json_schema

    result = invoke("schema")
    assert result.exit_code == 0
    printed = json.loads(result.output)
    assert printed == scenario_json_schema()
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"


# -- 4. list --------------------------------------------------------------------------------


def _names_whole(stdout: str) -> list[str]:
    """The shipped names that are not on some line whole, between two column borders."""
    names = [load_scenario(p).name for p in SHIPPED]
    return [n for n in names if not re.search(rf"[│|] {re.escape(n)} +[│|]", stdout)]


@pytest.mark.parametrize("columns", [30, 60, 80, 200])
def test_list_never_cuts_a_name_at_any_width(columns):
    result = cutover("list", columns=columns)
    assert result.returncode == 0, result.stderr
    assert not _names_whole(result.stdout)
    assert "…" not in "".join(line.split("│")[1] for line in result.stdout.splitlines()
                              if line.startswith("│"))


def test_list_keeps_a_name_longer_than_the_terminal_whole(tmp_path):
    long_name = "a_scenario_with_a_name_longer_than_any_ci_log_is_wide_" + "x" * 40
    (tmp_path / "long.yaml").write_text(GOOD.replace("name: good", f"name: {long_name}"))
    result = cutover("list", "--dir", str(tmp_path), columns=80)
    assert result.returncode == 0, result.stderr
    assert re.search(rf"│ {long_name} +│", result.stdout), result.stdout


def test_list_json_is_one_array_of_every_scenario():
    result = invoke("list", "--json")
    assert result.exit_code == 0
    entries = json.loads(result.output)
    assert isinstance(entries, list)
    assert [e["name"] for e in entries] == [load_scenario(p).name for p in SHIPPED]
    full = next(e for e in entries if e["name"] == "full_migration")
    assert set(full) == {"name", "path", "description", "tags", "phases", "expects",
                         "runtimes"}
    assert Path(full["path"]).name == "full_migration.yaml"
    assert full["description"] == " ".join(load_scenario(SCENARIOS / "full_migration.yaml")
                                           .description.split())
    assert "migration" in full["tags"] and full["phases"][0] == "foundation"


def test_list_reports_a_broken_file_on_stderr_and_exits_1(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text("name: bad\nphases: oops\n")
    result = cutover("list", "--dir", str(tmp_path), "--json")
    assert result.returncode == 1
    assert [e["name"] for e in json.loads(result.stdout)] == ["good"]
    assert f"{tmp_path / 'bad.yaml'}:2" in result.stderr


# -- 5. one line per message outside a terminal ----------------------------------------------


def test_a_long_message_stays_one_line_at_80_columns(tmp_path):
    deep = tmp_path / ("a_folder_with_a_rather_long_name_" * 4) / "and more words in it"
    deep.mkdir(parents=True)
    result = cutover("list", "--dir", str(deep), columns=80)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert len(lines[0]) > 80 and str(deep) in lines[0]


# -- 6. the live line's ETA ------------------------------------------------------------------


def _scenario(tmp_path: Path, time_scale: float = 0.1):
    path = tmp_path / "eta.yaml"
    path.write_text(f"name: eta\ntime_scale: {time_scale}\nphases:\n"
                    "  - name: one\n    steps:\n      - shadow: on\n      - hold: 10m\n"
                    "  - name: two\n    steps:\n      - traffic: {steps: [10, 50], hold: 5m}\n"
                    "      - hold: 2m\n")
    return load_scenario(path)


def test_plan_clock_counts_down_the_scaled_plan(tmp_path):
    from harness.runner.progress import PlanClock

    scenario = _scenario(tmp_path)
    shadow, hold = scenario.phases[0].steps
    traffic, last = scenario.phases[1].steps
    plan = PlanClock(scenario, 0.1)  # 10m + 2 x 5m + 2m = 22 min, scaled: 132 s
    assert plan.remaining(now_s=5.0) == pytest.approx(132)
    plan.step(shadow, 5.0)
    assert plan.remaining(7.0) == pytest.approx(132)  # a shadow switch takes no plan time
    plan.step(hold, 8.0)
    assert plan.remaining(38.0) == pytest.approx(102)
    plan.step(traffic, 70.0)  # the hold took longer (a slow start-up): its rest is not owed
    assert plan.remaining(70.0) == pytest.approx(72)
    assert plan.remaining(100.0) == pytest.approx(42)
    plan.step(last, 130.0)
    assert plan.remaining(200.0) == 0


def test_clock_reads_short():
    from harness.runner.progress import clock

    assert [clock(s) for s in (0, 12.4, 245, 3725)] == ["0s", "12s", "4m05s", "1h02m"]


def test_the_live_line_shows_the_eta(tmp_path):
    from rich.console import Console

    from harness.runner.progress import LiveProgress

    scenario = _scenario(tmp_path, time_scale=1.0)
    state = SimpleNamespace(scenario=scenario, time_scale=1.0, phase="one", new_percent=0,
                            shadow=False, markers=[], rollback=SimpleNamespace(triggered=False),
                            now_s=lambda: 0.0)
    progress = LiveProgress(Console(file=open(os.devnull, "w")), state,  # noqa: SIM115
                            SimpleNamespace(samples=[]), SimpleNamespace(fired=0))
    line = progress._render().plain
    assert line.endswith("eta 22m00s"), line
    state.rollback.triggered = True  # the rollback plan replaced the rest: no ETA for it
    assert "eta" not in progress._render().plain


# -- 7. the status word said once -----------------------------------------------------------


def test_simulate_says_passed_once(tmp_path):
    result = cutover("simulate", str(SCENARIOS / "phase1_foundation.yaml"), "--time-scale",
                     "0.02", "--report-dir", str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    verdict = next(line for line in result.stderr.splitlines() if "PASSED" in line)
    assert verdict.count("PASSED") == 1, verdict
    assert verdict.startswith("PASSED (simulated) phase1_foundation (")


def test_chaos_says_the_verdict_once(tmp_path, monkeypatch, capsys):
    from harness.chaos.run import ChaosOutcome
    from harness.commands import chaos
    from harness.results import Counts, Findings, RunResult, Verdict

    result = RunResult(
        scenario="chaos-3", runtime="process", started_at="2026-01-01T00:00:00+00:00",
        duration_s=30.0, time_scale=1.0, expected="SLOs met, no rollback",
        verdict=Verdict(passed=True, summary="PASSED (SLOs met, no rollback): 100 events "
                                             "fired, lost 0.", reasons=[]),
        counts=Counts(emitted=100, expected=100, stored_production=100), findings=Findings())

    async def fake_run(*args, **kwargs):
        return ChaosOutcome(passed=True, result=result, run_dir=tmp_path, chaos_dir=tmp_path)

    async def fake_choose(*args, **kwargs):
        return SimpleNamespace(name="process", why="asked for")

    monkeypatch.setattr(chaos, "run_chaos", fake_run)
    monkeypatch.setattr(chaos, "choose", fake_choose)
    code = asyncio.run(chaos.chaos_command(
        seed=3, duration=30.0, runtime="process", vocabulary="kill", faults=1, max_shrinks=0,
        shrink_tries=1, report_dir=tmp_path, replay=None, dry_run=False, rate="50/s",
        service_modules={}))
    assert code == 0
    line = next(ln for ln in capsys.readouterr().err.splitlines() if "survived" in ln)
    assert line == ("passed: 1 fault(s) survived; chaos-3 (SLOs met, no rollback): 100 events "
                    "fired, lost 0.")


# -- 8. one duration syntax --------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("2h", 7200.0), ("1d", 86400.0),
    ("250ms", 0.25), (" 5m ", 300.0)])
def test_duration_options_read_what_scenario_files_write(text, seconds):
    from harness.cli import DurationType

    assert DurationType().convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["5m", "300s", "300"])
def test_chaos_duration_takes_the_scenario_syntax(text):
    result = cutover("chaos", "--seed", "3", "--duration", text, "--runtime", "process",
                     "--dry-run")
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["duration_s"] == 300


@pytest.mark.parametrize("command, text, expected", [
    ("chaos", "10s", "at least 20s"),
    ("chaos", "soon", "expected a duration like '30s', '5m'"),
    ("chaos", "60 s x", "expected a duration like '30s', '5m'"),
    ("demo", "0", "at least 1s"),
    ("demo", "a while", "expected a duration like '30s', '5m'"),
])
def test_a_bad_duration_says_what_is_accepted(command, text, expected):
    result = cutover(command, "--duration", text, *(["--dry-run"] if command == "chaos" else []))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cutover {command}: "), result.stderr
    assert "--duration" in lines[0] and expected in lines[0]


def test_demo_listens_for_a_duration_in_the_scenario_syntax(tmp_path):
    result = cutover("demo", "--duration", "1.5s", "--rate", "100/s", "--report-dir",
                     str(tmp_path), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every emitted event was received exactly once" in result.stdout


# -- 9. fake-ha's token -------------------------------------------------------------------------


async def _auth(url: str, token: str) -> str:
    async with websockets.connect(url) as ws:
        await ws.recv()  # auth_required
        await ws.send(json.dumps({"type": "auth", "access_token": token}))
        return json.loads(await ws.recv())["type"]


def _serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str, str]:
    """fake-ha on a free port: the process, its URL and what its first line says of the
    token."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "fake-ha", "--port", "0", "--rate", "1/s",
         "--ledger", str(tmp_path / "ledger.jsonl"), *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # blocks until it listens (or died: then it is empty)
    m = re.match(r"fake Home Assistant on (\S+)  \((token [^,]+),", first)
    if m is None:
        proc.kill()
        pytest.fail(f"no start-up line: {first!r}")
    return proc, m[1], m[2]


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_fake_ha_makes_up_a_token_and_prints_it_once(tmp_path):
    proc, url, said = _serve(tmp_path)
    try:
        token = said.removeprefix("token ")
        assert len(token) >= 20 and token != "cutover-token"
        assert asyncio.run(_auth(url, token)) == "auth_ok"
        assert asyncio.run(_auth(url, "cutover-token")) == "auth_invalid"
    finally:
        _stop(proc)
    other, _, said_again = _serve(tmp_path)
    _stop(other)
    assert said_again != said  # fresh each time, not a constant


def test_fake_ha_token_option_still_sets_it_and_is_not_echoed(tmp_path):
    proc, url, said = _serve(tmp_path, "--token", "s3cret-given")
    try:
        assert said == "token from --token"
        assert asyncio.run(_auth(url, "s3cret-given")) == "auth_ok"
    finally:
        _stop(proc)
