"""websocket-ingestion as a real subprocess, between the real fake Home Assistant and a real
HTTP receiver standing in for enrichment (tests/pipeline/services/_ha_servers.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.common.durable_queue import DurableQueue
from pipeline.common.events import dumps_event, loads_event
from pipeline.common.normalise import normalise, parse_time
from pipeline.common.routing import RoutingEntry, RoutingFollower, RoutingTable
from pipeline.ingestion.intake import Intake
from pipeline.ingestion.ownership import OwnershipOutbox, decide
from simulators.home_assistant.load import parse_profile
from simulators.home_assistant.server import FakeHomeAssistant
from tests.fixtures.fake_ha import HA_TOKEN
from tests.fixtures.influx import free_port
from tests.fixtures.services import LaunchService, ServiceProcess
from tests.pipeline.ha_factory import ha_event
from tests.pipeline.keys import key_of

from ._ha_servers import EventReceiver, FakeAdmin, HttpServer, wait_for_stats, wait_until


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[EventReceiver, HttpServer]]:
    app = EventReceiver()
    server = HttpServer(app)
    await server.start()
    yield app, server
    await server.stop()


def ingestion_env(fake_ha: FakeHomeAssistant, enrichment_url: str, **extra: str) -> dict[str, str]:
    return {
        "CUTOVER_HA_URL": fake_ha.url,
        "CUTOVER_HA_TOKEN": HA_TOKEN,
        "CUTOVER_HA_BACKOFF_BASE_S": "0.1",
        "CUTOVER_ENRICHMENT_URL": enrichment_url,
        "CUTOVER_BREAKER_RESET_S": "0.5",
        "CUTOVER_LOG_LEVEL": "INFO",
        **extra,
    }


async def wait_for_health(url: str, status: int, timeout: float = 10.0) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        async with asyncio.timeout(timeout):
            while True:
                response = await client.get(f"{url}/health")
                if response.status_code == status:
                    body: dict[str, Any] = response.json()
                    return body
                await asyncio.sleep(0.05)


async def start_ingestion(launch_service: LaunchService, env: dict[str, str]) -> ServiceProcess:
    svc = launch_service("ingestion", env)
    await svc.ready()
    await wait_for_stats(svc.url, lambda s: s["ha"]["subscribed"], what="HA subscription")
    return svc


# -- in process: the two pieces of logic with sharp edges ------------------------------------------


async def test_intake_counts_a_malformed_event_and_commits_the_rest(tmp_path: Path) -> None:
    queue = await DurableQueue.open(tmp_path / "outbox.sqlite3")
    notified: list[int] = []
    intake = Intake(queue, on_durable=lambda: notified.append(queue.depth))
    intake.start()
    good = [ha_event(time_fired_ns=1_782_422_405_000_000_000 + i * 1000) for i in range(3)]
    broken = ha_event(time_fired_ns=1_782_422_405_000_000_500)
    del broken["data"]["entity_id"]
    for event in (good[0], broken, "not an object", good[1], good[2]):
        intake.on_event(event, time.time_ns())
    await wait_until(lambda: intake.committed == 3, timeout=5)
    assert (intake.received, intake.malformed, intake.pending) == (5, 2, 0)
    rows = await queue.peek(10)
    assert [key_of(loads_event(p)) for _, p in rows] == [key_of(g) for g in good]
    assert notified and intake.last_commit_delay_ns is not None
    await intake.close()
    await queue.close()


async def test_ownership_outbox_skips_and_acks_without_losing_order(tmp_path: Path) -> None:
    table = RoutingTable(entries=(RoutingEntry(effective_from_ns=0, new_percent=50),))
    follower = RoutingFollower("http://unused.invalid", initial=table)
    queue = await DurableQueue.open(tmp_path / "outbox.sqlite3")
    entities = [f"sensor.s{i}" for i in range(40)]
    events = [normalise(ha_event(e, time_fired_ns=1_782_422_405_000_000_000 + i * 1000),
                        time.time_ns()) for i, e in enumerate(entities)]
    await queue.put_many([dumps_event(e) for e in events])
    owned = [key_of(e) for e in events if decide(table, e.entity_id, e.time_fired_ns)]
    assert 0 < len(owned) < len(events)  # both kinds, in some interleaving
    outbox = OwnershipOutbox(queue, follower)
    sent: list[str] = []
    while True:
        rows = await outbox.peek(7)
        if not rows:
            break
        sent += [key_of(loads_event(p)) for _, p in rows]
        assert {loads_event(p).target for _, p in rows} == {"production"}
        await outbox.ack(rows[-1][0])
    assert sent == owned
    assert outbox.skipped == len(events) - len(owned) and queue.depth == 0
    assert outbox.forwarded == {"production": len(owned), "shadow": 0}
    await queue.close()
    await follower.stop()


# -- the service -----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_forwards_every_event_once_and_holds_them_while_the_receiver_is_down(
    fake_ha: FakeHomeAssistant, launch_service: LaunchService,
    receiver: tuple[EventReceiver, HttpServer],
) -> None:
    app, server = receiver
    svc = await start_ingestion(launch_service, ingestion_env(
        fake_ha, server.url, CUTOVER_STALLED_AFTER_S="1"))
    first = fake_ha.fire(200)
    await wait_until(lambda: len(app.ids()) == 200, what="first batch at the receiver")
    by_id = {key_of(e): e for e in app.events}
    for change in first:
        got = by_id[key_of(change)]
        assert got["target"] == "production" and got["entity_id"] == change.entity_id
        assert got["time_fired_ns"] == change.time_fired_ns and got["state"] == change.state

    await server.stop()  # enrichment down
    second = fake_ha.fire(300)
    stats = await wait_for_stats(
        svc.url, lambda s: s["outbox_depth"] == 300 and s["breaker"] != "closed",
        what="events held in the outbox with the breaker open")
    assert stats["received"] == 500 and stats["processed"] == 200
    health = await wait_for_health(svc.url, 503)  # progress-aware: connected is not enough
    assert "300 events in the outbox and nothing forwarded" in health["reason"]
    await server.start()  # back at the same address
    await wait_until(lambda: len(app.ids()) == 500, what="the held events after recovery")
    counts = app.counts()
    assert set(counts) == {key_of(c) for c in first + second}
    assert max(counts.values()) == 1
    stats = await wait_for_stats(svc.url, lambda s: s["outbox_depth"] == 0)
    assert stats["processed"] == 500 and stats["forwarded"] == {"production": 500, "shadow": 0}

    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{svc.url}/metrics")).text
        health = await client.get(f"{svc.url}/health")
    assert "cutover_events_processed_total 500.0" in metrics
    assert "cutover_ha_connected 1.0" in metrics
    assert health.status_code == 200
    assert await svc.stop() == 0


@pytest.mark.slow
async def test_sigkill_then_restart_recovers_every_event_from_history(
    fake_ha: FakeHomeAssistant, launch_service: LaunchService,
    receiver: tuple[EventReceiver, HttpServer],
) -> None:
    """kill -9 loses what was received and not yet durable, and Home Assistant fires to nobody
    until the restart subscribes: history gives all of it back, each event once."""
    app, server = receiver
    svc = await start_ingestion(launch_service, ingestion_env(fake_ha, server.url))
    fake_ha.set_profile(parse_profile("200/s"))
    await wait_until(lambda: len(app.ids()) >= 100, what="events flowing")
    await server.stop()  # from now on everything stays in the outbox: a durable backlog
    await wait_for_stats(svc.url, lambda s: s["outbox_depth"] >= 100, what="a backlog")

    svc.kill()  # SIGKILL: no flush, no goodbye
    dead_conn = next(r.connection for r in fake_ha.ledger.connections if r.what == "subscribed")
    await wait_until(lambda: fake_ha.stats().clients == 0, what="HA noticing the dead socket")
    await wait_until(lambda: fake_ha.fired > 0 and fake_ha.ledger[-1].connections == (),
                     what="events fired to nobody")
    await asyncio.sleep(0.5)

    svc.start()
    await svc.ready()
    restarted = await wait_for_stats(svc.url, lambda s: s["ha"]["subscribed"])
    assert restarted["outbox_depth"] >= 100  # the backlog survived the SIGKILL
    stats = await wait_for_stats(svc.url, lambda s: s["recovery"]["gaps"] >= 1, timeout=20,
                                 what="the gap read back from history")
    fake_ha.set_profile(None)
    await server.start()
    ledger = list(fake_ha.ledger)
    await wait_until(lambda: {key_of(e) for e in ledger} <= app.ids(), timeout=20,
                     what="every event Home Assistant fired, at the receiver")
    never_sent = [e for e in ledger if not e.connections]
    recovery = stats["recovery"]
    print(f"\nSIGKILL at 200 ev/s: {len(never_sent)} fired while nobody was subscribed; "
          f"recovered {recovery['recovered']} in {recovery['last_gap']['took_s']} s "
          f"({recovery['already_had']} already had); {len(ledger)} events, 0 lost")
    assert never_sent and recovery["recovered"] >= len(never_sent)
    assert recovery["unrecovered_gaps"] == 0
    assert max(app.counts().values()) == 1, "an event forwarded twice"
    recovered = [e for e in app.events if "recovered_from_history" in e["flags"]]
    assert len(recovered) == recovery["recovered"]
    by_key = {key_of(e): e for e in ledger}
    for got in recovered:  # the event it was: state, time to the microsecond, old_state
        sent = by_key[(got["entity_id"], got["time_fired_ns"])]
        assert got["state"] == (sent.state or "")
    assert dead_conn


@pytest.mark.slow
async def test_sigterm_unsubscribes_first_and_the_restart_recovers_the_gap(
    fake_ha: FakeHomeAssistant, launch_service: LaunchService,
    receiver: tuple[EventReceiver, HttpServer],
) -> None:
    """A graceful stop under load: every event Home Assistant sent before its unsubscribe
    result is forwarded, and what it fired until the restart comes back from history."""
    app, server = receiver
    svc = await start_ingestion(launch_service, ingestion_env(fake_ha, server.url))
    fake_ha.set_profile(parse_profile("500/s"))
    await wait_until(lambda: len(app.ids()) >= 200, what="events flowing")
    assert await svc.stop() == 0
    conn = next(r.connection for r in fake_ha.ledger.connections if r.what == "subscribed")
    assert any(r.what == "unsubscribed" and r.connection == conn
               for r in fake_ha.ledger.connections), "stopped without unsubscribing"
    sent_before = [e for e in fake_ha.ledger if conn in e.connections]
    assert {key_of(e) for e in sent_before} <= app.ids(), "a stop lost what HA had sent"
    await asyncio.sleep(1.0)  # firing to nobody
    svc.start()
    await svc.ready()
    await wait_for_stats(svc.url, lambda s: s["recovery"]["gaps"] >= 1, timeout=20,
                         what="the gap read back from history")
    fake_ha.set_profile(None)
    ledger = list(fake_ha.ledger)
    await wait_until(lambda: {key_of(e) for e in ledger} <= app.ids(), timeout=20,
                     what="every event Home Assistant fired, at the receiver")
    assert [e for e in ledger if not e.connections], "nothing was fired during the restart"
    assert max(app.counts().values()) == 1


@pytest.mark.slow
async def test_a_gap_longer_than_the_recovery_window_is_recovered_in_part_and_said_so(
    fake_ha: FakeHomeAssistant, launch_service: LaunchService,
    receiver: tuple[EventReceiver, HttpServer],
) -> None:
    app, server = receiver
    svc = await start_ingestion(launch_service, ingestion_env(
        fake_ha, server.url, CUTOVER_RECOVERY_MAX_WINDOW_S="1.0"))
    fake_ha.set_profile(parse_profile("200/s"))
    await wait_until(lambda: len(app.ids()) >= 100, what="events flowing")
    svc.kill()
    await asyncio.sleep(3.0)  # a 3 s gap, a 1 s window
    svc.start()
    await svc.ready()
    stats = await wait_for_stats(svc.url, lambda s: s["recovery"]["gaps"] >= 1, timeout=20,
                                 what="the gap read back from history")
    fake_ha.set_profile(None)
    recovery = stats["recovery"]
    assert recovery["unrecovered_gaps"] == 1 and recovery["unrecovered_s"] > 1.0
    log = svc.log_path.read_text()
    assert log.count("gap longer than the recovery window") == 1
    assert "cutover_ingest_unrecovered_gaps_total 1.0" in httpx.get(f"{svc.url}/metrics").text
    ledger = list(fake_ha.ledger)
    await wait_for_stats(svc.url, lambda s: s["queue_depth"] == 0, what="everything forwarded")
    missing = [e for e in ledger if key_of(e) not in app.ids()]
    # What is missing is the start of the gap, before the window; nothing after it.
    start = parse_time(stats["recovery"]["last_gap"]["start"])
    assert missing and all(e.time_fired_ns < start for e in missing)


async def test_ownership_split_held_until_covered_then_shadow_off_skips(
    fake_ha: FakeHomeAssistant, launch_service: LaunchService,
    receiver: tuple[EventReceiver, HttpServer],
) -> None:
    app, server = receiver
    admin = FakeAdmin(RoutingTable(
        entries=(RoutingEntry(effective_from_ns=0, new_percent=50, shadow=True),),
        valid_until_ns=time.time_ns()))
    admin.frozen = True  # the table covers nothing fired from now on: events must wait
    admin_server = HttpServer(admin)
    await admin_server.start()
    try:
        svc = await start_ingestion(launch_service, ingestion_env(
            fake_ha, server.url, CUTOVER_ADMIN_URL=admin_server.url, CUTOVER_ROUTING_POLL_S="0.05"))
        shadowed = fake_ha.fire(100)
        stats = await wait_for_stats(svc.url, lambda s: s["waiting"] == 100, what="held events")
        assert stats["processed"] == 0 and not app.events  # held, not guessed

        admin.frozen = False
        await wait_until(lambda: len(app.ids()) == 100, what="held events released")
        table = admin.table
        got = {key_of(e): e["target"] for e in app.events}
        expected = {key_of(c): decide(table, c.entity_id, c.time_fired_ns) for c in shadowed}
        assert got == expected
        assert set(got.values()) == {"production", "shadow"}

        boundary = admin.announce(new_percent=50, shadow=False)
        await wait_until(lambda: time.time_ns() > boundary, what="the shadow-off boundary")
        owned_only = fake_ha.fire(100)
        legacy_owned = [
            c for c in owned_only if table.owner(c.entity_id, c.time_fired_ns) == "legacy"
        ]
        stats = await wait_for_stats(
            svc.url, lambda s: s["skipped"]["not_owner"] == len(legacy_owned)
            and s["outbox_depth"] == 0, what="legacy-owned events skipped")
        assert stats["forwarded"]["production"] + stats["forwarded"]["shadow"] == \
            200 - len(legacy_owned)
        second = {key_of(e): e["target"] for e in app.events if key_of(e) not in got}
        assert second == {key_of(c): "production" for c in owned_only if c not in legacy_owned}
        assert await svc.stop() == 0  # before admin-api goes away (no refresh warnings)
    finally:
        await admin_server.stop()


async def test_refused_token_makes_health_503_with_the_reason(
    fake_ha: FakeHomeAssistant, launch_service: LaunchService,
) -> None:
    env = ingestion_env(fake_ha, "http://127.0.0.1:9", CUTOVER_HA_TOKEN="wrong-token")
    svc = launch_service("ingestion", env)
    await svc.ready()
    stats = await wait_for_stats(svc.url, lambda s: s["ha"]["fatal_error"] is not None)
    assert stats["ha"]["reconnects"] == 0  # auth_invalid is final: no retry loop
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{svc.url}/health")
    assert response.status_code == 503
    assert response.json()["reason"] == (
        "Home Assistant refused the token: Invalid access token or password")


async def test_health_503_when_home_assistant_is_unreachable(
    launch_service: LaunchService,
) -> None:
    env = {"CUTOVER_HA_URL": f"ws://127.0.0.1:{free_port()}/api/websocket",
           "CUTOVER_HA_TOKEN": HA_TOKEN, "CUTOVER_HA_BACKOFF_BASE_S": "0.1",
           "CUTOVER_HA_DOWN_AFTER_S": "0.5"}
    svc = launch_service("ingestion", env)
    await svc.ready()
    health = await wait_for_health(svc.url, 503)
    assert health["reason"].startswith("not connected to Home Assistant for ")
    assert "Connect call failed" in health["reason"] or "refused" in health["reason"]
