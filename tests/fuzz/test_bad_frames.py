"""The fake Home Assistant sends bad messages to the real legacy and websocket-ingestion.

Both services run as real processes, subscribed to the fake Home Assistant in the test's loop:
legacy writes to a real influxd, ingestion forwards through the real enrichment and storage to
the same influxd. Good events (the fleet's, and a replayed recording of non-ASCII entity ids,
states and attributes) are interleaved with every malformed kind the fake can send: frames
that are not JSON, binary frames, a frame over 4 MiB, unknown message types, and events on the
client's own subscription with missing fields, wrong types, an unknown event type, or 5 MiB of
attributes. Then:

- no service crashes or even reconnects, and /health stays 200 the whole time;
- every event of the ledger is stored, exactly once, state intact, by both paths;
- nothing else is stored (a bad event is never half-ingested);
- every bad message is counted where an operator looks (stats, /metrics) and logged with the
  reason naming the field.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from harness.checks.stored import StoredPoints, read_points
from pipeline.common.breaker import CircuitBreaker
from pipeline.common.durable_queue import DurableQueue
from pipeline.common.events import dumps_event
from pipeline.common.forwarder import Forwarder
from pipeline.common.httpclient import ServiceClient
from pipeline.common.normalise import normalise
from simulators.home_assistant.load import parse_profile
from simulators.home_assistant.server import MALFORMED_EVENTS, FakeHomeAssistant
from tests.fixtures.fake_ha import HA_TOKEN
from tests.fixtures.influx import InfluxServer
from tests.fixtures.services import LaunchService, ServiceProcess
from tests.pipeline.ha_factory import T0_NS, ha_event

pytestmark = pytest.mark.slow

#: Frames the client cannot read as a message (counted as bad frames).
UNREADABLE = ("truncated", "not_json", "binary")
#: Readable messages that are not events of its subscription (counted as unexpected).
UNEXPECTED = ("unknown_type", "oversized")
#: Events on its own subscription that normalise must refuse (counted as malformed).
MALFORMED = tuple(MALFORMED_EVENTS)

#: Good events that are not ASCII anywhere they can be: entity id, state, attribute keys and
#: values (Home Assistant's own ids are ASCII; a custom integration's need not be).
NON_ASCII = [
    (
        "sensor.température_salon",
        "21,5 °C",
        {"unit_of_measurement": "°C", "friendly_name": "Salon"},
    ),
    ("sensor.温度_計", "二十一", {"名前": "居間の温度計", "単位": "℃"}),
    ("light.ламп_кухня", "вкл", {"яркость": 255, "цвет": ["красный", "зелёный"]}),
    ("media_player.مشغل", "يعمل", {"عنوان": "أغنية", "direction": "rtl\u200f"}),
    ("sensor.emoji_😀", "😀🔥", {"😀": "😀", "zwj": "👩‍👩‍👧", "bom": "\ufeff"}),
    ("switch.plain", "on", {"combining": "e\u0301", "nbsp": "a\u00a0b", "nul": "x\u0000y"}),
    ("sensor.quotes", 'say "hé"\\ ,=', {'k "q"': "\\", "newline": "a\nb"}),
    ("sensor.zero", "0", {"état": "21.50"}),
]


@dataclass
class Pipeline:
    ha: FakeHomeAssistant
    influxd: InfluxServer
    legacy: ServiceProcess
    ingestion: ServiceProcess
    enrichment: ServiceProcess
    storage: ServiceProcess
    legacy_db: str
    production_db: str
    unhealthy: list[str]

    @property
    def services(self) -> list[ServiceProcess]:
        return [self.legacy, self.ingestion, self.enrichment, self.storage]

    async def stats(self, svc: ServiceProcess) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{svc.url}/api/v1/stats")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

    async def metrics(self, svc: ServiceProcess) -> str:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(f"{svc.url}/metrics")).text

    async def points(self, database: str) -> StoredPoints:
        async with httpx.AsyncClient() as client:
            return await read_points(client, self.influxd.url, database)


async def _watch_health(services: list[ServiceProcess], unhealthy: list[str],
                        stop: asyncio.Event) -> None:
    """Every 100 ms, every service's /health: anything but a 200 is recorded."""
    async with httpx.AsyncClient(timeout=2) as client:
        while not stop.is_set():
            for svc in services:
                try:
                    response = await client.get(f"{svc.url}/health")
                    if response.status_code != 200:
                        unhealthy.append(f"{svc.name}: {response.status_code} {response.text}")
                except httpx.HTTPError as exc:
                    unhealthy.append(f"{svc.name}: {exc!r}")
                if svc.proc is not None and svc.proc.poll() is not None:
                    unhealthy.append(f"{svc.name} exited with {svc.proc.returncode}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)


@pytest.fixture
async def pipeline(fake_ha: FakeHomeAssistant, launch_service: LaunchService,
                   influxd: InfluxServer) -> AsyncIterator[Pipeline]:
    prefix = f"bad_{uuid.uuid4().hex[:8]}"
    legacy_db, production_db, shadow_db = f"{prefix}_legacy", f"{prefix}_prod", f"{prefix}_shadow"
    ha_env = {"CUTOVER_HA_URL": fake_ha.url, "CUTOVER_HA_TOKEN": HA_TOKEN,
              "CUTOVER_HA_BACKOFF_BASE_S": "0.1"}
    storage = launch_service("storage", {"CUTOVER_INFLUX_URL": influxd.url,
                                         "CUTOVER_INFLUX_DB": production_db,
                                         "CUTOVER_INFLUX_SHADOW_DB": shadow_db})
    enrichment = launch_service("enrichment", {"CUTOVER_STORAGE_URL": storage.url})
    ingestion = launch_service("ingestion", {**ha_env, "CUTOVER_ENRICHMENT_URL": enrichment.url})
    legacy = launch_service("legacy", {**ha_env, "CUTOVER_INFLUX_URL": influxd.url,
                                       "CUTOVER_INFLUX_DB": legacy_db})
    p = Pipeline(fake_ha, influxd, legacy, ingestion, enrichment, storage, legacy_db,
                 production_db, unhealthy=[])
    try:
        for svc in p.services:
            await svc.ready(30, healthy=True)
        for _ in range(200):
            if sum(1 for c in fake_ha.connections.values() if c.subs.events) == 2:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("legacy and ingestion did not both subscribe")
        yield p
    finally:
        for db in (legacy_db, production_db, shadow_db):
            with contextlib.suppress(Exception):  # cleanup only
                influxd.query_raw(None, f'DROP DATABASE "{db}"')


def _recording(path: Path) -> Path:
    """The non-ASCII events as a recording the fake replays (so the ledger has them)."""
    with path.open("wb") as f:
        for i, (entity_id, state, attributes) in enumerate(NON_ASCII):
            event = ha_event(entity_id, None if i % 2 else "précédent", state,
                             attributes=attributes, time_fired_ns=T0_NS + i * 5_000_000)
            f.write(orjson.dumps(event) + b"\n")
    return path


async def _until(predicate: Any, what: str, timeout: float = 30.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_bad_messages_are_counted_and_every_good_event_is_stored(
        pipeline: Pipeline, tmp_path: Path) -> None:
    p, ha = pipeline, pipeline.ha
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_health(p.services, p.unhealthy, stop))
    try:
        kinds = [*UNREADABLE, *UNEXPECTED, *MALFORMED, "oversized_event"]  # two blobs in a row
        ha.fire(20)
        for kind in kinds:
            assert ha.send_malformed_frame(kind) == 2
            ha.fire(5)
        ha.set_profile(parse_profile(f"replay:{_recording(tmp_path / 'non_ascii.jsonl')}"))
        await _until(lambda: _replayed(ha), "the non-ASCII recording to be fired", 10)
        # Back to the fleet for fire(): set_profile(None) alone keeps the spent recording.
        ha.set_profile(parse_profile("1/min"))
        ha.set_profile(None)
        for kind in reversed(kinds):
            ha.send_malformed_frame(kind)
            ha.fire(3)

        fired = {e.key: e for e in ha.ledger}
        assert len(fired) == 20 + 5 * len(kinds) + len(NON_ASCII) + 3 * len(kinds)
        for name, db in (("legacy", p.legacy_db), ("new", p.production_db)):
            async def stored(db: str = db) -> StoredPoints | None:
                points = await p.points(db)
                keys = {points.key(i) for i in range(len(points))}
                return points if len(keys & fired.keys()) == len(fired) else None
            points = await _until(stored, f"every ledger event in {name}'s database", 60)
            # Exactly the ledger, exactly once, as fired: nothing of a bad event was stored.
            assert sorted(points.key(i) for i in range(len(points))) == sorted(fired), name
            for i, state in enumerate(points.states):
                assert state == (fired[points.key(i)].state or ""), name
        non_ascii = {e.entity_id: e.state for e in fired.values() if not e.entity_id.isascii()}
        assert len(non_ascii) == sum(1 for eid, _, _ in NON_ASCII if not eid.isascii())
    finally:
        stop.set()
        await watcher

    assert p.unhealthy == [], p.unhealthy[:5]
    bad_events = 2 * len(MALFORMED) + 2  # each kind twice, oversized_event four times
    for svc in (p.legacy, p.ingestion):
        stats = await p.stats(svc)
        client = stats["ha"]
        # Not one reconnect: a bad message is never a reason to drop the subscription (and the
        # events fired while resubscribing).
        assert (client["connects"], client["reconnects"]) == (1, 0), (svc.name, client)
        assert client["bad_frames"] == 2 * len(UNREADABLE), (svc.name, client)
        assert client["unexpected"] == 2 * len(UNEXPECTED), (svc.name, client)
        assert stats["malformed"] == bad_events, (svc.name, stats)
        metrics = await p.metrics(svc)
        assert f'cutover_events_rejected_total{{reason="malformed"}} {float(bad_events)}' in metrics
        assert f"cutover_ha_bad_frames_total {float(2 * len(UNREADABLE))}" in metrics
        logs = _log_lines(svc)
        bad_frame = next(line for line in logs
                         if line["message"] == "bad frame from Home Assistant")
        assert bad_frame["reason"].startswith("not JSON") and bad_frame["bad_frames"] == 1
        malformed = next(line for line in logs if line["message"].startswith("malformed event"))
        # The first bad event is missing_fields: its reason names the field.
        assert malformed["reason"].startswith("event.") and ": missing" in malformed["reason"]
    ingestion = await p.stats(p.ingestion)
    assert ingestion["dead_letters"] == 0 and ingestion["outbox_depth"] == 0
    assert (await p.stats(p.enrichment))["rejected"] == 0
    storage = await p.stats(p.storage)
    assert (storage["rejected"], storage["dead_lettered"]) == (0, 0)
    legacy = await p.stats(p.legacy)
    assert legacy["dropped_total"] == 0


async def _replayed(ha: FakeHomeAssistant) -> bool:
    return sum(1 for e in ha.ledger if not e.entity_id.isascii()) >= sum(
        1 for eid, _, _ in NON_ASCII if not eid.isascii()) and sum(
        1 for e in ha.ledger if e.entity_id in {eid for eid, _, _ in NON_ASCII}) == len(NON_ASCII)


def _log_lines(svc: ServiceProcess) -> list[dict[str, Any]]:
    lines = []
    for raw in svc.log_path.read_text(errors="replace").splitlines():
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict) and "message" in doc:
            lines.append(doc)
    return lines


async def test_a_backlog_of_large_events_is_forwarded_under_the_body_limit(
        launch_service: LaunchService, tmp_path: Path) -> None:
    """Pinned: the forwarder sent up to 500 events a batch whatever their size, so 40 events of
    300 KiB (12 MiB) met enrichment's 8 MiB limit: a 413, retried for ever, holding the outbox.
    Batches are now capped at 4 MiB (at least one event)."""
    enrichment = launch_service("enrichment", {"CUTOVER_STORAGE_URL": "http://127.0.0.1:9"})
    await enrichment.ready(30)
    queue = await DurableQueue.open(tmp_path / "outbox.sqlite3")
    events = [normalise(ha_event("media_player.big", None, "playing",
                                 attributes={"playlist": f"{i}" + "x" * 300 * 1024},
                                 time_fired_ns=T0_NS + i * 1000), T0_NS) for i in range(40)]
    await queue.put_many([dumps_event(e) for e in events])
    client = ServiceClient(enrichment.url, breaker=CircuitBreaker(5, 0.5))
    forwarder = Forwarder(queue, client, batch_size=500)
    forwarder.start()
    try:
        await _until(lambda: _drained(queue), "the outbox to drain", 20)
        assert forwarder.stats.rejected == 0 and forwarder.stats.batches >= 3
        stats = (await httpx.AsyncClient().get(f"{enrichment.url}/api/v1/stats")).json()
        assert stats["received"] == 40
    finally:
        await forwarder.stop(flush_timeout=0)
        await client.aclose()
        await queue.close()


async def _drained(queue: DurableQueue) -> bool:
    return queue.depth == 0
