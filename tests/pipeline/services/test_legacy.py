"""The legacy monolith as a real subprocess, between the real fake Home Assistant and a real
influxd: what it writes, what an InfluxDB outage costs it (and that it says so), SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest

from pipeline.common.events import MEASUREMENT
from pipeline.common.routing import RoutingEntry, RoutingTable
from simulators.home_assistant.events import StateChange
from simulators.home_assistant.server import FakeHomeAssistant
from tests.fixtures.fake_ha import HA_TOKEN
from tests.fixtures.influx import InfluxServer
from tests.fixtures.services import LaunchService, ServiceProcess
from tests.pipeline.keys import key_of

from ._ha_servers import FakeAdmin, HttpServer, wait_for_stats


def legacy_env(
    fake_ha: FakeHomeAssistant, influxd: InfluxServer, db: str, **extra: str
) -> dict[str, str]:
    return {
        "CUTOVER_HA_URL": fake_ha.url,
        "CUTOVER_HA_TOKEN": HA_TOKEN,
        "CUTOVER_HA_BACKOFF_BASE_S": "0.1",
        "CUTOVER_INFLUX_URL": influxd.url,
        "CUTOVER_INFLUX_DB": db,
        **extra,
    }


async def start_legacy(launch_service: LaunchService, env: dict[str, str]) -> ServiceProcess:
    svc = launch_service("legacy", env)
    await svc.ready()
    await wait_for_stats(svc.url, lambda s: s["ha"]["subscribed"], what="HA subscription")
    return svc


def points(influxd: InfluxServer, db: str) -> list[dict[str, Any]]:
    return influxd.query(db, f'SELECT * FROM "{MEASUREMENT}"')


def count_by_key(influxd: InfluxServer, db: str) -> Counter[str]:
    return Counter(key_of(p) for p in points(influxd, db))


async def metrics_text(svc: ServiceProcess) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{svc.url}/metrics")).text


def assert_point_matches(point: dict[str, Any], change: StateChange) -> None:
    new, old = change.new_state, change.old_state
    assert point["time"] == change.time_fired_ns  # time_fired, never processing time
    assert point["entity_id"] == change.entity_id
    assert point["domain"] == change.entity_id.split(".", 1)[0]
    assert point["event_type"] == "state_changed"
    assert point["state"] == ("" if new is None else new["state"])  # strings, never converted
    assert point["old_state"] == ("" if old is None else old["state"])
    attributes = {} if new is None else new["attributes"]
    assert orjson.loads(point["attributes"]) == attributes
    assert point["writer"] == "legacy" and point["weather_enriched"] is False
    assert point["received_at"] <= point["stored_at"]
    assert point["received_at"] >= change.time_fired_ns


async def test_writes_every_fired_event_exactly_once_with_the_contract_fields(
    fake_ha: FakeHomeAssistant, launch_service: LaunchService, influxd: InfluxServer,
    influx_db: str,
) -> None:
    svc = await start_legacy(launch_service, legacy_env(fake_ha, influxd, influx_db))
    fired = fake_ha.fire(300)
    stats = await wait_for_stats(svc.url, lambda s: s["processed"] == 300, what="300 written")
    assert stats["received"] == 300 and stats["dropped_total"] == 0 and stats["queue_depth"] == 0
    by_id = {key_of(p): p for p in points(influxd, influx_db)}
    counts = count_by_key(influxd, influx_db)
    assert set(counts) == {key_of(c) for c in fired} and max(counts.values()) == 1
    for change in fired:
        assert_point_matches(by_id[key_of(change)], change)
    text = await metrics_text(svc)
    assert "cutover_events_processed_total 300.0" in text
    assert "cutover_event_latency_seconds_count 300.0" in text
    assert 'cutover_events_dropped_total{reason="influx_unavailable"} 0.0' in text


@pytest.mark.slow
async def test_influx_outage_loses_events_and_reports_exactly_how_many(
    fake_ha: FakeHomeAssistant, launch_service: LaunchService, influxd: InfluxServer,
    influx_db: str,
) -> None:
    svc = await start_legacy(launch_service, legacy_env(
        fake_ha, influxd, influx_db, CUTOVER_LEGACY_RETRY_BACKOFF_S="0.05"))
    before = fake_ha.fire(100)
    await wait_for_stats(svc.url, lambda s: s["processed"] == 100, what="written before")

    await asyncio.to_thread(influxd.stop)
    try:
        during = fake_ha.fire(150)
        stats = await wait_for_stats(svc.url, lambda s: s["dropped_total"] == 150,
                                     what="the outage's events dropped")
        assert stats["dropped"]["influx_unavailable"] == 150
        assert stats["write_failures"] >= 4  # a first try and 3 retries, then the drop
        async with httpx.AsyncClient() as client:
            health = await client.get(f"{svc.url}/health")
        assert health.status_code == 503
        assert "InfluxDB writes failing" in health.json()["reason"]
        assert "150 events dropped" in health.json()["reason"]
    finally:
        await asyncio.to_thread(influxd.start)

    after = fake_ha.fire(100)
    stats = await wait_for_stats(svc.url, lambda s: s["processed"] == 200, what="written after")
    counts = count_by_key(influxd, influx_db)
    fired_ids = {key_of(c) for c in before + during + after}
    missing = fired_ids - set(counts)
    assert missing == {key_of(c) for c in during}  # exactly the outage's events, no others
    assert max(counts.values()) == 1
    assert stats["dropped_total"] == len(missing) == 150
    assert stats["dropped_in_doubt"] == 0  # refused connections: nothing reached InfluxDB
    text = await metrics_text(svc)
    assert 'cutover_events_dropped_total{reason="influx_unavailable"} 150.0' in text
    assert "cutover_events_processed_total 200.0" in text
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{svc.url}/health")).status_code == 200
    assert "events dropped: the monolith has no durable buffer" in svc.log_tail(200)


async def test_bounded_buffer_drops_the_overflow_and_sigterm_writes_the_rest(
    fake_ha: FakeHomeAssistant, launch_service: LaunchService, influxd: InfluxServer,
    influx_db: str,
) -> None:
    # A batch window longer than the test: nothing is written until the shutdown flushes it.
    svc = await start_legacy(launch_service, legacy_env(
        fake_ha, influxd, influx_db, CUTOVER_LEGACY_FLUSH_INTERVAL_S="60",
        CUTOVER_LEGACY_BATCH_SIZE="100000", CUTOVER_LEGACY_BUFFER="250"))
    fired = fake_ha.fire(300)
    stats = await wait_for_stats(svc.url, lambda s: s["received"] == 300, what="300 received")
    assert stats["queue_depth"] == 250 and stats["dropped"]["buffer_full"] == 50
    assert 'cutover_events_dropped_total{reason="buffer_full"} 50.0' in await metrics_text(svc)
    assert points(influxd, influx_db) == []
    assert await svc.stop() == 0  # SIGTERM: the buffer is written, then exit 0
    counts = count_by_key(influxd, influx_db)
    assert set(counts) == {key_of(c) for c in fired[:250]}  # the newest 50 were dropped
    assert max(counts.values()) == 1



async def test_writes_sent_without_an_answer_are_dropped_in_doubt(
    fake_ha: FakeHomeAssistant, launch_service: LaunchService,
) -> None:
    """An InfluxDB that takes the request and goes away may have stored it: those drops are
    counted apart, so loss is bounded from both sides (dropped - in doubt <= lost <= dropped)."""
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        svc = await start_legacy(launch_service, {
            "CUTOVER_HA_URL": fake_ha.url, "CUTOVER_HA_TOKEN": HA_TOKEN,
            "CUTOVER_INFLUX_URL": f"http://127.0.0.1:{port}",
            "CUTOVER_LEGACY_WRITE_RETRIES": "1", "CUTOVER_LEGACY_RETRY_BACKOFF_S": "0.01"})
        fake_ha.fire(20)
        stats = await wait_for_stats(svc.url, lambda s: s["dropped_total"] == 20,
                                     what="the events InfluxDB never answered for, dropped")
    finally:
        server.close()
        await server.wait_closed()
    assert stats["dropped"]["influx_unavailable"] == stats["dropped_in_doubt"] == 20


async def test_writes_only_what_legacy_owns_under_a_routing_table(
    fake_ha: FakeHomeAssistant, launch_service: LaunchService, influxd: InfluxServer,
    influx_db: str,
) -> None:
    admin = FakeAdmin(RoutingTable(
        entries=(RoutingEntry(effective_from_ns=0, new_percent=50, shadow=True),),
        valid_until_ns=time.time_ns()))
    server = HttpServer(admin)
    await server.start()
    try:
        svc = await start_legacy(launch_service, legacy_env(
            fake_ha, influxd, influx_db, CUTOVER_ADMIN_URL=server.url,
            CUTOVER_ROUTING_POLL_S="0.05"))
        fired = fake_ha.fire(200)
        table = admin.table
        mine = {key_of(c) for c in fired if table.owner(c.entity_id, c.time_fired_ns) == "legacy"}
        assert 0 < len(mine) < 200
        stats = await wait_for_stats(
            svc.url, lambda s: s["processed"] + s["skipped"]["not_owner"] == 200,
            what="every event decided")
        assert stats["processed"] == len(mine) and stats["dropped_total"] == 0
        assert set(count_by_key(influxd, influx_db)) == mine
        assert await svc.stop() == 0  # before admin-api goes away (no refresh warnings)
    finally:
        await server.stop()
