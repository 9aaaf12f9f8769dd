"""The whole pipeline as real processes against a real influxd and the fake Home Assistant:
N events in, N points out, through crashes, an InfluxDB outage and ownership changes.

The harness's own process runtime starts the services and its accounting judges the result
(ledger vs InfluxDB), so these tests exercise exactly what a scenario run does.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness.checks.accounting import Accounting, account
from harness.checks.stored import read_points
from harness.runner.control import ControlPlane
from harness.runtime.base import Wiring
from harness.runtime.process import ProcessRuntime
from pipeline.common.routing import RoutingTable
from simulators.home_assistant.fleet import Fleet, FleetSpec
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.load import parse_profile
from simulators.home_assistant.server import FakeHomeAssistant, ServerConfig

pytestmark = pytest.mark.slow

PRODUCTION, SHADOW = "home_assistant_events", "home_assistant_events_shadow"
NEW = ["weather", "storage", "enrichment", "ingestion"]


@dataclass
class Chain:
    ha: FakeHomeAssistant
    rt: ProcessRuntime
    client: httpx.AsyncClient
    control: ControlPlane

    async def up(self, *services: str) -> None:
        for s in services:
            await self.rt.start(s)  # type: ignore[arg-type]
        for s in services:
            await self.rt.wait_healthy(s, 60)  # type: ignore[arg-type]

    async def subscribed(self, n: int) -> None:
        for _ in range(300):
            if sum(1 for c in self.ha.connections.values() if c.subs.events) >= n:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"fewer than {n} Home Assistant clients subscribed")

    async def fire_for(self, rate: str, seconds: float) -> None:
        self.ha.set_profile(parse_profile(rate))
        await asyncio.sleep(seconds)
        self.ha.set_profile(None)

    async def settle(self, expected: int, db: str = PRODUCTION, timeout: float = 60) -> None:
        """Until ``expected`` points are in ``db`` and stay put for a second."""
        loop = asyncio.get_running_loop()
        deadline, last, stable = loop.time() + timeout, -1, 0
        while loop.time() < deadline:
            n = len(await read_points(self.client, self.rt.url("influxdb"), db))
            stable = stable + 1 if n == last else 0
            last = n
            if n >= expected and stable >= 2:
                return
            await asyncio.sleep(0.5)

    async def account(self, table: RoutingTable | None = None) -> Accounting:
        url = self.rt.url("influxdb")
        production = await read_points(self.client, url, PRODUCTION)
        shadow = await read_points(self.client, url, SHADOW)
        owner = (lambda e, t: table.owner(e, t)) if table else (lambda e, t: "any")
        return account(self.ha.ledger, production, shadow, phase_of=lambda t: "test",
                       owner_of=owner)


async def _chain(tmp_path: Path, *, control_plane: bool) -> AsyncIterator[Chain]:
    token, admin_token = secrets.token_hex(8), secrets.token_hex(8)
    ha = FakeHomeAssistant(ServerConfig(port=0, token=token),
                           fleet=Fleet(FleetSpec(entities=150, seed=4, p_add_remove=0.02,
                                                 p_type_change=0.05)),
                           ledger=Ledger(tmp_path / "ledger.jsonl"))
    await ha.start()
    rt = ProcessRuntime(Wiring(tmp_path, ha.url, token, admin_token, "key", lead_ms=500,
                               control_plane=control_plane))
    client = httpx.AsyncClient(timeout=10)
    try:
        await rt.start("influxdb")
        await rt.wait_healthy("influxdb", 30)
        yield Chain(ha, rt, client, ControlPlane(rt.url("admin"), admin_token, client))
    finally:
        await rt.close()
        await ha.stop()
        await client.aclose()


@pytest.fixture
async def chain(tmp_path: Path) -> AsyncIterator[Chain]:
    """The new chain alone (no admin-api: it owns every event)."""
    async for c in _chain(tmp_path, control_plane=False):
        yield c


@pytest.fixture
async def migration(tmp_path: Path) -> AsyncIterator[Chain]:
    """Legacy and the new chain under admin-api's control plane."""
    async for c in _chain(tmp_path, control_plane=True):
        yield c


def _clean(acc: Accounting) -> None:
    c = acc.counts
    assert (c.lost, c.duplicated, c.unexpected, c.inconsistent) == (0, 0, 0, 0), (
        c, acc.findings.lost[:3], acc.findings.inconsistent[:3])


async def test_n_events_in_n_points_out_with_the_contract_fields(chain: Chain):
    await chain.up(*NEW)
    await chain.subscribed(1)
    await chain.fire_for("200/s", 3)
    n = len(chain.ha.ledger)
    await chain.settle(n)
    acc = await chain.account()
    _clean(acc)
    assert acc.counts.stored_production == n > 500
    rows = await chain.client.get(f"{chain.rt.url('influxdb')}/query", params={
        "db": PRODUCTION, "q": 'SELECT * FROM "home_assistant_events" LIMIT 1'})
    columns = set(rows.json()["results"][0]["series"][0]["columns"])
    assert {"entity_id", "domain", "event_type", "context_id", "state", "old_state", "attributes",
            "received_at", "enriched_at", "stored_at", "weather_enriched",
            "writer"} <= columns


async def test_enrichment_and_storage_killed_mid_stream_lose_nothing(chain: Chain):
    await chain.up(*NEW)
    await chain.subscribed(1)
    chain.ha.set_profile(parse_profile("150/s"))
    await asyncio.sleep(1.5)
    await chain.rt.kill("enrichment")
    await asyncio.sleep(1.0)
    await chain.rt.start("enrichment")
    await asyncio.sleep(1.0)
    await chain.rt.kill("storage")
    await asyncio.sleep(1.5)
    await chain.rt.start("storage")
    await asyncio.sleep(1.5)
    chain.ha.set_profile(None)
    n = len(chain.ha.ledger)
    await chain.settle(n, timeout=90)
    acc = await chain.account()
    _clean(acc)
    assert acc.counts.stored_production == n


async def test_influxdb_outage_new_path_loses_nothing_and_legacy_loss_is_counted(
        migration: Chain, capsys: pytest.CaptureFixture[str]):
    await migration.up("admin", "legacy", *NEW)
    await migration.subscribed(2)
    await migration.control.set(shadow=True, reason="test: new writes shadow")
    await asyncio.sleep(1.0)  # past the announced boundary
    migration.ha.set_profile(parse_profile("100/s"))
    await asyncio.sleep(1.0)
    await migration.rt.stop("influxdb")
    await asyncio.sleep(10.0)
    await migration.rt.start("influxdb")
    await migration.rt.wait_healthy("influxdb", 30)
    await asyncio.sleep(1.0)
    migration.ha.set_profile(None)
    n = len(migration.ha.ledger)
    await migration.settle(n, db=SHADOW, timeout=90)
    acc = await migration.account()
    stats = (await migration.client.get(f"{migration.rt.url('legacy')}/api/v1/stats")).json()
    # The new pipeline (shadow) has every event; legacy (production) lost what arrived
    # during the outage, and says how many.
    assert acc.counts.stored_shadow == n
    legacy_lost = n - acc.counts.stored_production
    dropped = stats.get("dropped") or stats.get("dropped_total")
    dropped_n = sum(dropped.values()) if isinstance(dropped, dict) else int(dropped or 0)
    # A batch sent as InfluxDB stopped may have been stored though no answer came: legacy
    # says how many it dropped in doubt (CI once saw 902 dropped, 901 lost).
    in_doubt = int(stats["dropped_in_doubt"])
    with capsys.disabled():
        print(f"\nInfluxDB down 10 s at 100 events/s: new path lost 0 of {n}; legacy lost "
              f"{legacy_lost}, reported {dropped_n} ({in_doubt} of them in doubt)")
    assert legacy_lost > 0 and dropped_n - in_doubt <= legacy_lost <= dropped_n


async def test_each_event_written_once_by_its_owner_through_switch_and_rollback(
        migration: Chain):
    await migration.up("admin", "legacy", *NEW)
    await migration.subscribed(2)
    migration.ha.set_profile(parse_profile("150/s"))
    for percent in (10, 25, 50, 75, 90, 100, 50):
        await migration.control.set(new_percent=percent, reason=f"test {percent}%")
        await asyncio.sleep(1.2)
    await migration.control.rollback("test rollback mid-stream")
    await asyncio.sleep(1.5)
    migration.ha.set_profile(None)
    n = len(migration.ha.ledger)
    await migration.settle(n)
    table = await migration.control.table()
    acc = await migration.account(table)
    _clean(acc)
    assert acc.counts.stored_production == n
    # Every point was written by the owner the routing table names for it.
    points = await read_points(migration.client, migration.rt.url("influxdb"), PRODUCTION)
    wrong = [(points.key(i), points.writers[i])
             for i in range(len(points))
             if points.writers[i] != table.owner(points.entity_ids[i], points.times_ns[i])]
    assert not wrong, wrong[:5]
    writers = set(points.writers)
    assert writers == {"legacy", "new"}
