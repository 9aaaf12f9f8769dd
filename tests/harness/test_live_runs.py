"""Live runs: a scenario against a Home Assistant the harness did not start.

Here "someone else's Home Assistant" is a fake started by the test itself, which the run only
knows by URL and token: the run must watch it through its witness, refuse what only the fake can
do, and never write the token anywhere. The same run against a real Home Assistant is in
tests/real_ha/.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.live import LiveTarget, Witness, live_problems
from harness.runner.run import run_scenario
from harness.scenario import load_scenario
from harness.scenario.model import Scenario
from simulators.home_assistant.fleet import Fleet, FleetSpec
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.load import parse_profile
from simulators.home_assistant.server import FakeHomeAssistant, ServerConfig

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


def _scenario(**overrides: object) -> Scenario:
    raw = {"name": "x", "phases": [{"name": "p", "steps": [{"hold": "1s"}]}], **overrides}
    return Scenario.model_validate(raw)


def test_live_migration_asks_nothing_only_the_fake_can_do() -> None:
    assert live_problems(load_scenario(SCENARIOS / "live_migration.yaml")) == []


def test_load_and_faults_on_home_assistant_itself_are_refused_each_with_why() -> None:
    problems = live_problems(_scenario(
        load="50/s", faults=[{"kind": "ha_restart", "at": "1s"},
                             {"kind": "latency", "hop": "ha-ingestion", "latency": "10ms"}]))
    assert len(problems) == 2, problems
    assert "load profile" in problems[0] and "remove the load section" in problems[0]
    assert "'ha_restart'" in problems[1] and "ha-ingestion" in problems[1]
    # A scenario without a load section is fine: the default load simply does not apply.
    assert live_problems(_scenario()) == []


def test_cli_refuses_a_live_run_with_one_line_per_reason(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"HA_TEST_TOKEN": "secret-value-123"}
    result = runner.invoke(cli, ["run", str(SCENARIOS / "full_migration.yaml"), "--runtime",
                                 "process", "--ha-url", "ws://127.0.0.1:9/api/websocket",
                                 "--ha-token-env", "HA_TEST_TOKEN",
                                 "--report-dir", str(tmp_path)], env=env)
    assert result.exit_code == 2, result.output
    assert "not against a live Home Assistant: full_migration: a load profile" in result.output
    assert "secret-value-123" not in result.output
    unset = runner.invoke(cli, ["run", "live_migration", "--ha-url",
                                "ws://127.0.0.1:9/api/websocket", "--ha-token-env",
                                "HA_TEST_UNSET"], env={"HA_TEST_UNSET": ""})
    assert unset.exit_code == 2 and "$HA_TEST_UNSET is not set or empty" in unset.output
    alone = runner.invoke(cli, ["run", "live_migration", "--ha-url", "ws://127.0.0.1:9/"])
    assert alone.exit_code == 2 and "go together" in alone.output


async def test_an_unreachable_or_refusing_home_assistant_is_one_clear_error(
        tmp_path: Path) -> None:
    from harness.live import WitnessError

    witness = Witness("ws://127.0.0.1:9/api/websocket", "t", Ledger(None))
    with pytest.raises(WitnessError, match="cannot connect to Home Assistant at ws://127.0.0.1:9"):
        await witness.start(timeout=5)
    async with FakeHomeAssistant(ServerConfig(port=0, token="right"),
                                 fleet=Fleet(FleetSpec(entities=5, seed=1)),
                                 ledger=Ledger(None)) as ha:
        wrong = Witness(ha.url, "wrong-token-xyz", Ledger(None))
        with pytest.raises(WitnessError, match="refused the token") as info:
            await wrong.start(timeout=5)
        assert "wrong-token-xyz" not in str(info.value)


def _their_ha(seed: int) -> FakeHomeAssistant:
    """A Home Assistant the witness only knows by URL and token ("t")."""
    return FakeHomeAssistant(ServerConfig(port=0, token="t"),
                             fleet=Fleet(FleetSpec(entities=50, seed=seed)), ledger=Ledger(None))


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def _until_recorded(ledger: Ledger, n: int, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if len(ledger) >= n:
            return
        await asyncio.sleep(0.05)


async def test_the_witness_records_every_event_with_its_own_key_and_context(
        tmp_path: Path) -> None:
    async with _their_ha(seed=3) as ha:
        ledger = Ledger(None)
        witness = Witness(ha.url, "t", ledger)
        await witness.start()
        try:
            ha.fire(30)  # before the books open: the pipeline does not exist yet
            await _until(lambda: witness.received == 30)
            witness.open_books()
            ha.fire(30)
            await _until_recorded(ledger, 30)
            witness.close_books()
            ha.fire(5)  # after the plan: not judged
            await _until(lambda: witness.received == 65)
        finally:
            await witness.stop()
        fired = {e.key: e for e in list(ha.ledger)[30:60]}
        seen = {e.key: e for e in ledger}
        assert seen.keys() == fired.keys()
        assert all(seen[k].context_id == fired[k].context_id for k in fired)
        assert all(seen[k].state == fired[k].state for k in fired)
        assert all(e.connections == ("live",) for e in ledger)
        assert witness.outside_books == 35


@pytest.mark.slow
async def test_the_witness_fills_its_own_gap_from_history(tmp_path: Path) -> None:
    async with _their_ha(seed=4) as ha:
        ledger = Ledger(None)
        witness = Witness(ha.url, "t", ledger)
        await witness.start()
        witness.open_books()
        try:
            ha.fire(10)
            await _until_recorded(ledger, 10)
            await ha.refuse_connections(1.0)  # keeps the witness out for 1 s once it is closed
            await ha.drop_connections()
            ha.fire(7)  # fired while the witness is away: only history has these
            await _until_recorded(ledger, 17)
        finally:
            await witness.stop()
        assert {e.key for e in ledger} == {e.key for e in ha.ledger}
        assert witness.recovered == 7 and witness.reconnects >= 1


@pytest.mark.slow
async def test_a_live_run_watches_a_home_assistant_it_did_not_start_and_keeps_its_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    token = "live-" + secrets.token_hex(12)
    source = SCENARIOS / "live_migration.yaml"
    scenario = load_scenario(source)
    async with FakeHomeAssistant(ServerConfig(port=0, token=token),
                                 fleet=Fleet(FleetSpec(entities=80, seed=9)),
                                 ledger=Ledger(tmp_path / "theirs.jsonl")) as theirs:
        theirs.set_profile(parse_profile("20/s"))  # the home's own events: not the harness's
        result, run_dir = await run_scenario(
            scenario, source=source, runtime="process", time_scale=0.01,
            report_dir=tmp_path / "reports", live=LiveTarget(theirs.url, token))
        theirs.set_profile(None)
    assert result.verdict.passed, result.verdict.summary
    assert result.home_assistant == f"live Home Assistant at {theirs.url}"
    assert result.counts.emitted > 100 and result.counts.lost == 0
    # The run's ledger is its witness: every event it saw is one Home Assistant fired.
    fired = {e.key for e in Ledger.load(tmp_path / "theirs.jsonl")}
    witnessed = {e.key for e in Ledger.load(run_dir / "ledger.jsonl")}
    assert witnessed and witnessed <= fired
    assert orjson.loads((run_dir / "run.json").read_bytes())["home_assistant"].startswith("live")
    assert f"live Home Assistant at {theirs.url}" in (run_dir / "report.html").read_text()
    leaks = [str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()
             and token.encode() in p.read_bytes()]
    assert not leaks, f"the token is written in {leaks}"
