"""The containers runtime: the new chain in containers against a fake Home Assistant in this
process, judged by the harness's own accounting (ledger vs InfluxDB), through the faults only
containers have; and nothing of a run left in the engine afterwards.

The fast tests need no engine (runtime choice with none, the process runtime refusing network
faults); the slow ones skip, saying how to get one, when no engine answers.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness.checks.accounting import Accounting, account
from harness.checks.stored import read_points
from harness.errors import RuntimeFailed, Unsupported
from harness.runtime.base import ServiceName, Wiring
from harness.runtime.containers.engine import HOW_TO_GET_AN_ENGINE
from harness.runtime.containers.host import harness_host
from harness.runtime.containers.reaper import (
    OWNER_LABEL,
    RUN_DIR_LABEL,
    RUN_LABEL,
    owner_id,
    remove_leftovers,
)
from harness.runtime.containers.runtime import ContainersRuntime
from harness.runtime.process import ProcessRuntime
from harness.runtime.select import RuntimeUnavailable, choose
from harness.scenario.model import Scenario
from simulators.home_assistant.fleet import Fleet, FleetSpec
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.load import parse_profile
from simulators.home_assistant.server import FakeHomeAssistant, ServerConfig

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = "home_assistant_events"
NEW: list[ServiceName] = ["influxdb", "weather", "storage", "enrichment", "ingestion"]


def _engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_engine = pytest.mark.skipif(not _engine_answers(),
                                  reason=f"no Docker engine answers: {HOW_TO_GET_AN_ENGINE}")


# -- with no engine ---------------------------------------------------------------------------

def _scenario(runtimes: list[str] | None = None) -> Scenario:
    raw = {"name": "t", "description": "d", "load": "10/s",
           "phases": [{"name": "p", "steps": [{"hold": "1s"}]}]}
    if runtimes is not None:
        raw["runtimes"] = runtimes
    return Scenario.model_validate(raw)


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")


async def test_containers_asked_for_with_no_engine_says_how_to_get_one(no_engine: None):
    with pytest.raises(RuntimeUnavailable) as err:
        await choose("containers", _scenario())
    assert "\n" not in str(err.value)
    assert HOW_TO_GET_AN_ENGINE in str(err.value)


async def test_auto_with_no_engine_falls_back_to_processes_and_says_why(no_engine: None):
    choice = await choose("auto", _scenario())
    assert choice.name == "process"
    assert "no Docker engine answers" in choice.why


async def test_auto_on_a_process_only_scenario_does_not_ask_the_engine(no_engine: None):
    choice = await choose("auto", _scenario(["process"]))
    assert (choice.name, choice.why) == ("process", "scenario t runs on processes only")


async def test_the_process_runtime_refuses_a_partition_without_the_fault_proxy(tmp_path: Path):
    # With it, a partition is every proxy hop of the service going down (survive_partition).
    rt = ProcessRuntime(Wiring(tmp_path, "ws://127.0.0.1:1/api/websocket", "t", "a", "k"))
    try:
        for fault in (rt.disconnect, rt.reconnect):
            with pytest.raises(Unsupported, match="without the fault proxy"):
                await fault("storage")
    finally:
        await rt.close()


# -- the chain in containers ------------------------------------------------------------------

@dataclass
class Chain:
    ha: FakeHomeAssistant
    rt: ContainersRuntime
    client: httpx.AsyncClient

    async def subscribed(self, n: int = 1) -> None:
        for _ in range(300):
            if sum(1 for c in self.ha.connections.values() if c.subs.events) >= n:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"fewer than {n} Home Assistant clients subscribed")

    async def settle(self, expected: int, timeout: float = 90) -> int:
        """Until ``expected`` points are stored and stay put for a second; how many there are."""
        loop = asyncio.get_running_loop()
        deadline, last, stable = loop.time() + timeout, -1, 0
        while loop.time() < deadline:
            n = len(await read_points(self.client, self.rt.url("influxdb"), PRODUCTION))
            stable = stable + 1 if n == last else 0
            last = n
            if n >= expected and stable >= 2:
                break
            await asyncio.sleep(0.5)
        return last

    async def account(self) -> Accounting:
        url = self.rt.url("influxdb")
        production = await read_points(self.client, url, PRODUCTION)
        shadow = await read_points(self.client, url, PRODUCTION + "_shadow")
        return account(self.ha.ledger, production, shadow, phase_of=lambda t: "test",
                       owner_of=lambda e, t: "any")

    async def under_load(self, fault: Callable[[], Awaitable[None]], seconds: float = 1.5
                         ) -> None:
        """Events flowing before, during and after ``fault``."""
        self.ha.set_profile(parse_profile("100/s"))
        await asyncio.sleep(seconds)
        await fault()
        await asyncio.sleep(seconds)
        self.ha.set_profile(None)


def _labelled(run_id: str) -> list[str]:
    found = []
    for kind in ("container", "network"):
        argv = ["docker", kind, "ls", "--quiet", "--filter", f"label=io.ha-cutover.run={run_id}"]
        if kind == "container":
            argv.append("--all")
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        found += [f"{kind} {line}" for line in out.split()]
    return found


@pytest.fixture
async def chain(tmp_path: Path) -> AsyncIterator[Chain]:
    host = await harness_host()
    token = secrets.token_hex(8)
    ha = FakeHomeAssistant(ServerConfig(host=host.bind, port=0, token=token),
                           fleet=Fleet(FleetSpec(entities=150, seed=4,  # type: ignore[call-arg]
                                                 p_add_remove=0.02, p_type_change=0.05)),
                           ledger=Ledger(tmp_path / "ledger.jsonl"))
    await ha.start()
    rt = ContainersRuntime(Wiring(tmp_path, host.ha_url(ha.port), token, "admin-token", "key",
                                  control_plane=False))
    client = httpx.AsyncClient(timeout=10)
    try:
        for service in NEW:
            await rt.start(service)
        await asyncio.gather(*(rt.wait_healthy(s, 120) for s in NEW))
        yield Chain(ha, rt, client)
    finally:
        await rt.close()
        await ha.stop()
        await client.aclose()
        assert _labelled(rt.run_id) == [], "close() left these behind"


def _clean(acc: Accounting) -> None:
    c = acc.counts
    assert (c.lost, c.duplicated, c.unexpected, c.inconsistent) == (0, 0, 0, 0), (
        c, acc.findings.lost[:3], acc.findings.duplicated[:3], acc.findings.inconsistent[:3])


@needs_engine
@pytest.mark.slow
async def test_every_event_stored_once_through_pause_kill_and_disconnect(chain: Chain,
                                                                        tmp_path: Path):
    async def no_fault() -> None:  # first, that the chain works at all
        pass

    await chain.subscribed()
    await chain.under_load(no_fault, 1.0)
    n = len(chain.ha.ledger)
    assert await chain.settle(n) == n > 100
    _clean(await chain.account())

    rt = chain.rt

    async def pause_storage() -> None:
        await rt.pause("storage")
        assert not rt.running("storage")
        await asyncio.sleep(2.0)
        await rt.resume("storage")

    async def kill_enrichment() -> None:
        await rt.kill("enrichment")
        assert not rt.running("enrichment")
        await asyncio.sleep(1.0)
        await rt.start("enrichment")

    async def cut_storage_off() -> None:
        await rt.disconnect("storage")
        with pytest.raises(httpx.TransportError):  # the harness loses it too
            await chain.client.get(f"{rt.url('storage')}/health", timeout=1)
        await asyncio.sleep(3.0)
        await rt.reconnect("storage")

    for fault in (pause_storage, kill_enrichment, cut_storage_off):
        await chain.under_load(fault)
    await asyncio.gather(*(rt.wait_healthy(s, 60) for s in ("storage", "enrichment")))
    n = len(chain.ha.ledger)
    assert await chain.settle(n, timeout=120) == n
    acc = await chain.account()
    _clean(acc)
    assert acc.counts.stored_production == n
    # The logs of every container are in the run directory; enrichment's holds both starts.
    starts = (tmp_path / "logs" / "enrichment.log").read_text().count('"message":"starting"')
    assert starts == 2
    assert all((tmp_path / "logs" / f"{s}.log").stat().st_size > 0 for s in NEW
               if s != "influxdb")  # influxd logs at warn: nothing to say in a good run


@needs_engine
@pytest.mark.slow
async def test_close_after_a_failure_leaves_nothing_even_paused_or_cut_off(tmp_path: Path):
    rt = ContainersRuntime(Wiring(tmp_path, "ws://127.0.0.1:1/api/websocket", "t", "a", "k"))
    try:
        for service in ("influxdb", "weather"):
            await rt.start(service)
        await rt.wait_healthy("weather", 60)
        await rt.pause("weather")
        await rt.disconnect("influxdb")
        with pytest.raises(RuntimeFailed, match="not healthy"):  # the run fails here
            await rt.wait_healthy("weather", 1)
        assert _labelled(rt.run_id)
    finally:
        await rt.close()
    assert _labelled(rt.run_id) == []
    await rt.close()  # twice is fine


def _containers_of_runs_under(root: Path) -> list[str]:
    out = subprocess.run(["docker", "ps", "--all", "--filter", f"label={RUN_DIR_LABEL}",
                          "--format", f'{{{{.Names}}}} {{{{.Label "{RUN_DIR_LABEL}"}}}}'],
                         capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines()
            if line.split()[1].startswith(str(root))]


@needs_engine
@pytest.mark.slow
def test_ctrl_c_during_a_run_leaves_no_container(tmp_path: Path):
    scenario = tmp_path / "long.yaml"
    scenario.write_text(
        "name: long\nload: 20/s\nfleet: {entities: 20}\nphases:\n  - name: only\n    steps:\n"
        "      - start: [influxdb, admin, legacy, storage]\n      - hold: 10m\n")
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(scenario),
                             "--runtime", "containers", "--report-dir", str(tmp_path / "r")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(_containers_of_runs_under(tmp_path)) < 4 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert len(_containers_of_runs_under(tmp_path)) == 4, "the services did not start"
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _containers_of_runs_under(tmp_path) == []


@needs_engine
@pytest.mark.slow
async def test_remove_leftovers_takes_what_a_dead_harness_left_and_nothing_else():
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout.strip()
    mine = secrets.token_hex(4)
    created = []
    for owner, run in ((f"{socket.gethostname()}/{dead}/1", f"dead-{mine}"),
                       (owner_id(), f"live-{mine}")):
        labels = ["--label", f"{OWNER_LABEL}={owner}", "--label", f"{RUN_LABEL}={run}"]
        subprocess.run(["docker", "network", "create", *labels, f"cutover-{run}"],
                       capture_output=True, check=True)
        created.append(run)
    try:
        removed = await remove_leftovers()
        assert f"network cutover-dead-{mine}" in removed
        assert _labelled(f"dead-{mine}") == []
        assert _labelled(f"live-{mine}") != []  # its owner (this process) is alive
    finally:
        for run in created:
            subprocess.run(["docker", "network", "rm", f"cutover-{run}"], capture_output=True)


