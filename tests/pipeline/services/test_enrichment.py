"""enrichment-pipeline as a real subprocess, between a real fake weather API (in this process,
on a free port) and a minimal storage stand-in that records every batch it is sent.

What is proved here: every accepted event reaches storage (once, enriched, its `state`
untouched), a slow, failing or rate-limiting weather API never delays or drops an event
(FAILURE_MODES.md #13), and neither a storage outage nor a SIGKILL loses an event that was
answered 200.
"""

from __future__ import annotations

import asyncio
import random
import socket
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from pipeline.common.events import describe_raw
from pipeline.enrichment.flags import AttributeTypeTracker
from pipeline.enrichment.stall import StallMonitor, StallState
from pipeline.enrichment.weather import WeatherCache, WeatherRefresher, WeatherSnapshot, parse_owm
from simulators.home_assistant.timefmt import ulid
from simulators.weather.config import WeatherConfig
from simulators.weather.server import WeatherServer
from tests.fixtures.services import LaunchService, ServiceProcess

WEATHER_KEY = "weather-test-key"
WEATHER_FIELDS = {
    "temperature_c",
    "humidity_pct",
    "pressure_hpa",
    "wind_speed_ms",
    "condition",
    "age_s",
}
_RNG = random.Random(20)


# --------------------------------------------------------------------------- storage stand-in


@dataclass
class Arrival:
    event: dict[str, Any]
    at: float  # time.monotonic() in this process, comparable with the sender's clock


@dataclass
class Receiver:
    """Records POSTed batches like a contract receiver: 200 {"accepted": n, "rejected": []}.

    `stop()` closes the port (connection refused) and `start()` opens the same one again.
    """

    port: int = 0
    arrivals: dict[str, list[Arrival]] = field(default_factory=dict)
    batches: int = 0
    refuse: set[str] = field(default_factory=set)  # event ids to list under "rejected"
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        app = FastAPI()

        @app.post("/api/v1/events")
        async def events(request: Request) -> JSONResponse:
            now = time.monotonic()
            batch = orjson.loads(await request.body())["events"]
            self.batches += 1
            rejected = []
            for index, event in enumerate(batch):
                if event["context_id"] in self.refuse:
                    rejected.append({"index": index, "event": describe_raw(event),
                                     "reason": "attributes.unit: field type conflict"})
                    continue
                self.arrivals.setdefault(event["context_id"], []).append(Arrival(event, now))
            return JSONResponse({"accepted": len(batch) - len(rejected), "rejected": rejected})

        self.app = app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def one(self, context_id: str) -> dict[str, Any]:
        [arrival] = self.arrivals[context_id]
        return arrival.event

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, lifespan="off", log_config=None, access_log=False, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        async with asyncio.timeout(5):
            while not self._server.started:
                await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = self._task = None


# --------------------------------------------------------------------------- fixtures, helpers


@pytest.fixture
async def weather() -> AsyncIterator[WeatherServer]:
    async with WeatherServer(WeatherConfig(port=0, api_key=WEATHER_KEY, seed=4)) as server:
        yield server


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as c:
        yield c


Start = Callable[..., Awaitable[ServiceProcess]]


@pytest.fixture
def start_enrichment(
    launch_service: LaunchService,
    weather: WeatherServer,
    receiver: Receiver,
    client: httpx.AsyncClient,
) -> Start:
    async def start(*, warm: bool = True, **env: str) -> ServiceProcess:
        svc = launch_service(
            "enrichment",
            {
                "CUTOVER_STORAGE_URL": receiver.url,
                "CUTOVER_WEATHER_URL": weather.url,
                "CUTOVER_WEATHER_API_KEY": WEATHER_KEY,
                "CUTOVER_WEATHER_TIMEOUT_S": "0.5",
                **env,
            },
        )
        await svc.ready()
        if warm:  # the first fetch runs in the background: wait for it rather than race it
            await until(
                lambda: weather_status(client, svc), lambda s: s == "fresh", what="fresh weather"
            )
        return svc

    return start


async def weather_status(client: httpx.AsyncClient, svc: ServiceProcess) -> str:
    return str((await client.get(f"{svc.url}/api/v1/stats")).json()["weather"]["status"])


async def until(
    probe: Callable[[], Awaitable[Any]],
    done: Callable[[Any], bool],
    *,
    timeout: float = 10.0,
    what: str = "condition",
) -> Any:
    """Poll ``probe`` until ``done(result)``; fail naming ``what`` and the last result."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if done(last):
            return last
        await asyncio.sleep(0.05)
    shown = repr(last)
    raise AssertionError(
        f"no {what} within {timeout}s; last: {shown[:300]}{'...' if len(shown) > 300 else ''}"
    )


def make_event(
    entity_id: str = "sensor.living_room_temperature",
    state: str | None = "21.50",
    *,
    old_state: str | None = "21.40",
    attributes: dict[str, Any] | None = None,
    target: str = "production",
    flags: list[str] | None = None,
) -> dict[str, Any]:
    """An event as ingestion sends it (the Event JSON, not yet enriched)."""
    now = time.time_ns()
    return {
        "context_id": ulid(now, _RNG),
        "event_type": "state_changed",
        "entity_id": entity_id,
        "domain": entity_id.partition(".")[0],
        "time_fired_ns": now - 1_000_000,
        "state": state,
        "old_state": old_state,
        "attributes": {"friendly_name": "Living room"} if attributes is None else attributes,
        "received_at_ns": now,
        "enriched_at_ns": None,
        "weather": None,
        "weather_enriched": False,
        "flags": flags or [],
        "target": target,
    }


async def post(
    client: httpx.AsyncClient, svc: ServiceProcess, events: list[dict[str, Any]]
) -> httpx.Response:
    return await client.post(
        f"{svc.url}/api/v1/events",
        content=orjson.dumps({"events": events}),
        headers={"content-type": "application/json"},
    )


async def all_arrived(receiver: Receiver, ids: list[str], timeout: float = 10.0) -> None:
    async def missing() -> str:
        lost = [i for i in ids if i not in receiver.arrivals]
        return f"{len(lost)} missing, e.g. {lost[:3]}" if lost else ""

    await until(missing, lambda m: not m, timeout=timeout, what=f"arrival of all {len(ids)} events")


@dataclass
class Flow:
    sent: list[str] = field(default_factory=list)
    post_s: list[float] = field(default_factory=list)  # POST answer time
    starts: dict[str, float] = field(default_factory=dict)  # context_id -> when its POST started

    def delivery_s(self, receiver: Receiver) -> list[float]:
        return [receiver.arrivals[i][0].at - self.starts[i] for i in self.sent]


async def stream(
    client: httpx.AsyncClient,
    svc: ServiceProcess,
    seconds: float,
    *,
    batch: int = 10,
    every: float = 0.02,
    flow: Flow | None = None,
) -> Flow:
    """Post a batch every ``every`` s for ``seconds``, like ingestion under steady load."""
    flow = flow or Flow()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        events = [make_event() for _ in range(batch)]
        started = time.monotonic()
        r = await post(client, svc, events)
        flow.post_s.append(time.monotonic() - started)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == batch
        for e in events:
            flow.sent.append(e["context_id"])
            flow.starts[e["context_id"]] = started
        await asyncio.sleep(every)
    return flow


def without_enrichment(event: dict[str, Any]) -> dict[str, Any]:
    """The fields enrichment must pass through untouched: everything but what it adds."""
    return {
        k: v
        for k, v in event.items()
        if k not in ("weather", "weather_enriched", "enriched_at_ns", "flags")
    }


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


async def metric(client: httpx.AsyncClient, svc: ServiceProcess, name: str, **labels: str) -> float:
    text = (await client.get(f"{svc.url}/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


# --------------------------------------------------------------------------- tests


async def test_every_event_arrives_once_enriched_with_weather(
    start_enrichment: Start, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    svc = await start_enrichment()
    sent = [make_event(target="shadow" if i % 7 == 0 else "production") for i in range(400)]
    answers = await asyncio.gather(
        *(post(client, svc, sent[i : i + 40]) for i in range(0, 400, 40))
    )
    assert all(r.status_code == 200 and r.json()["rejected"] == [] for r in answers)
    await all_arrived(receiver, [e["context_id"] for e in sent])

    for original in sent:
        got = receiver.one(original["context_id"])  # exactly once
        assert got["weather_enriched"] is True
        assert set(got["weather"]) >= WEATHER_FIELDS
        assert isinstance(got["weather"]["temperature_c"], float) and isinstance(
            got["weather"]["condition"], str
        )
        assert got["enriched_at_ns"] >= original["received_at_ns"]
        assert without_enrichment(got) == without_enrichment(original)
        assert got["flags"] == []
    stats = (await client.get(f"{svc.url}/api/v1/stats")).json()
    assert (stats["service"], stats["received"], stats["processed"], stats["queue_depth"]) == (
        "enrichment-pipeline",
        400,
        400,
        0,
    )
    assert stats["enriched"] == {"fresh": 400, "stale": 0, "none": 0}

    # A sender re-sending a batch whose answer it lost: accepted, not queued a second time.
    again = await post(client, svc, sent[:40])
    assert again.json() == {"accepted": 40, "rejected": [], "duplicates": 40}
    await asyncio.sleep(0.3)
    assert all(len(receiver.arrivals[e["context_id"]]) == 1 for e in sent[:40])


@pytest.mark.slow
async def test_slow_weather_api_never_delays_an_event(
    start_enrichment: Start, weather: WeatherServer, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    svc = await start_enrichment(CUTOVER_WEATHER_TTL_S="1")
    baseline = await stream(client, svc, 1.0)
    await all_arrived(receiver, baseline.sent)

    weather.faults.slow(5.0)  # each call now outlives the service's 0.5 s hard timeout
    slow = await stream(client, svc, 3.0)
    await all_arrived(receiver, slow.sent)

    latencies = slow.delivery_s(receiver)
    # An event that waited on the weather API would take its 0.5 s timeout at least; half of
    # that leaves room for a busy 2-core machine (one suite run saw a p95 over 50 ms).
    assert p95(slow.post_s) < 0.25, f"POST p95 {p95(slow.post_s) * 1000:.1f} ms"
    assert p95(latencies) < 0.25, f"delivery p95 {p95(latencies) * 1000:.1f} ms"
    assert p95(latencies) < p95(baseline.delivery_s(receiver)) + 0.25
    got = [receiver.one(i) for i in slow.sent]
    assert all(e["weather_enriched"] for e in got), "weather is served stale, not dropped"
    stale = [e for e in got if "weather_stale" in e["flags"]]
    assert stale and all(e["weather"]["age_s"] > 1.0 for e in stale)
    assert await metric(client, svc, "cutover_weather_fetches_total", outcome="timeout") >= 1
    health = (await client.get(f"{svc.url}/health")).json()
    assert health["status"] == "ok" and "weather stale" in health["details"]["degraded"]


@pytest.mark.slow
async def test_weather_errors_and_rate_limits_lose_and_delay_nothing(
    start_enrichment: Start, weather: WeatherServer, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    svc = await start_enrichment(CUTOVER_WEATHER_TTL_S="0.4")
    flow = Flow()
    weather.faults.errors(500, fraction=1.0)
    await stream(client, svc, 1.2, flow=flow)
    weather.faults.clear()
    weather.faults.rate_limit(retry_after_s=1)
    await stream(client, svc, 1.2, flow=flow)
    weather.faults.clear()
    await all_arrived(receiver, flow.sent)

    assert all(len(receiver.arrivals[i]) == 1 for i in flow.sent)
    assert p95(flow.delivery_s(receiver)) < 0.05
    assert all(receiver.one(i)["weather_enriched"] for i in flow.sent)
    assert await metric(client, svc, "cutover_weather_fetches_total", outcome="server_error") >= 1
    assert await metric(client, svc, "cutover_weather_fetches_total", outcome="rate_limited") >= 1
    assert weather.counts["error"] >= 1 and weather.counts["rate_limited"] >= 1
    assert (await client.get(f"{svc.url}/health")).status_code == 200


async def test_without_any_weather_events_pass_unenriched_then_get_it_when_it_comes(
    start_enrichment: Start, weather: WeatherServer, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    weather.faults.down()
    svc = await start_enrichment(warm=False, CUTOVER_WEATHER_TTL_S="1")
    before = [make_event() for _ in range(20)]
    assert (await post(client, svc, before)).status_code == 200
    await all_arrived(receiver, [e["context_id"] for e in before])
    for e in before:
        got = receiver.one(e["context_id"])
        assert (got["weather_enriched"], got["weather"]) == (False, None)
        assert got["state"] == e["state"]
    health = await client.get(f"{svc.url}/health")
    assert (
        health.status_code == 200 and health.json()["details"]["weather"]["status"] == "unavailable"
    )

    weather.faults.up()
    await until(
        lambda: weather_status(client, svc), lambda s: s == "fresh", what="weather after recovery"
    )
    after = make_event()
    await post(client, svc, [after])
    await all_arrived(receiver, [after["context_id"]])
    assert receiver.one(after["context_id"])["weather_enriched"] is True
    assert await metric(client, svc, "cutover_events_enriched_total", weather="none") == 20


@pytest.mark.slow
async def test_storage_outage_loses_nothing_and_health_says_so(
    start_enrichment: Start, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    svc = await start_enrichment(CUTOVER_HEALTH_STALL_S="1", CUTOVER_BREAKER_RESET_S="0.5")
    flow = await stream(client, svc, 0.3)
    await receiver.stop()
    await stream(client, svc, 2.0, flow=flow)  # answered 200 all along: durable, not delivered

    response = await client.get(f"{svc.url}/health")
    assert response.status_code == 503, response.text
    assert "storage unreachable" in response.json()["reason"]
    stats = (await client.get(f"{svc.url}/api/v1/stats")).json()
    assert stats["queue_depth"] > 0

    await receiver.start()
    await all_arrived(receiver, flow.sent, timeout=15)
    await until(
        lambda: client.get(f"{svc.url}/health"),
        lambda r: r.status_code == 200,
        what="healthy again",
    )
    assert sum(len(receiver.arrivals[i]) for i in flow.sent) == len(flow.sent)


@pytest.mark.slow
async def test_sigkill_loses_nothing_that_was_answered_200(
    start_enrichment: Start, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    svc = await start_enrichment()
    acked: list[str] = []

    async def sender() -> None:
        while True:
            events = [make_event() for _ in range(20)]
            try:
                r = await post(client, svc, events)
            except httpx.TransportError:
                return  # killed: what had no answer may or may not be stored; not counted
            if r.status_code == 200:
                acked.extend(e["context_id"] for e in events)

    task = asyncio.create_task(sender())
    await asyncio.sleep(0.3)
    await receiver.stop()  # storage away: the outbox fills, so the kill meets undelivered events
    await asyncio.sleep(0.5)
    svc.kill()
    await task
    undelivered = [i for i in acked if i not in receiver.arrivals]
    assert len(undelivered) > 50, "the kill should have caught events in the outbox"

    await receiver.start()
    svc.start()
    await svc.ready()
    await all_arrived(receiver, acked, timeout=15)


@pytest.mark.slow
async def test_sigterm_exits_0_and_what_storage_did_not_take_waits_on_disk(
    start_enrichment: Start, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    svc = await start_enrichment()
    await receiver.stop()
    events = [make_event() for _ in range(50)]
    assert (await post(client, svc, events)).status_code == 200
    assert await svc.stop() == 0
    assert '"left_in_outbox":50' in svc.log_tail(200)  # kept, not dropped, not lost

    await receiver.start()
    svc.start()
    await svc.ready()
    await all_arrived(receiver, [e["context_id"] for e in events])


async def test_events_sharing_a_context_are_each_forwarded(
    start_enrichment: Start, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """One automation run: its own entity twice and two lights, under one context. Each is its
    own event (entity, time_fired); deduplicating by context would keep one of four."""
    svc = await start_enrichment()
    run = [make_event(entity) for entity in
           ("automation.lights", "light.a", "light.b", "automation.lights")]
    base = run[0]["time_fired_ns"]
    for k, event in enumerate(run):
        event["context_id"] = run[0]["context_id"]
        event["time_fired_ns"] = base + k * 1_000
    r = await post(client, svc, run)
    assert r.json() == {"accepted": 4, "rejected": [], "duplicates": 0}
    await until(lambda: asyncio.sleep(0, receiver.arrivals.get(run[0]["context_id"], [])),
                lambda got: len(got) >= 4, what="the four events of one context")
    got = sorted((a.event["entity_id"], a.event["time_fired_ns"])
                 for a in receiver.arrivals[run[0]["context_id"]])
    assert got == sorted((e["entity_id"], e["time_fired_ns"]) for e in run)
    # The same four again (a sender's retry) are duplicates: identity is the key, not the batch.
    again = await post(client, svc, run)
    assert again.json()["duplicates"] == 4


async def test_a_malformed_event_is_rejected_alone(
    start_enrichment: Start, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    svc = await start_enrichment()
    good = [make_event() for _ in range(3)]
    short_id = {**make_event(), "context_id": "too-short"}
    batch = [good[0], short_id, good[1], "not an event", good[2]]
    r = await client.post(f"{svc.url}/api/v1/events", content=orjson.dumps({"events": batch}))
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 3
    # A rejection names the event by its key (entity@time_fired), as far as it can be read.
    assert [(x["index"], x["event"]) for x in body["rejected"]] == [(1, describe_raw(short_id)),
                                                                     (3, None)]
    assert body["rejected"][0]["event"].startswith(short_id["entity_id"] + "@")
    assert "context_id" in body["rejected"][0]["reason"]
    await all_arrived(receiver, [e["context_id"] for e in good])
    assert "too-short" not in receiver.arrivals
    assert (
        await metric(client, svc, "cutover_events_rejected_total", reason="string_too_short") == 1
    )

    for content, status in (
        (b"{not json", 400),
        (b'{"evnts": []}', 422),
        (b"[]", 422),
        (b'{"events": [], "extra": 1}', 422),
        (b"\xff\xfe", 400),
    ):
        r = await client.post(
            f"{svc.url}/api/v1/events",
            content=content,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == status, (content, r.text)
        assert r.json()["detail"]


async def test_events_storage_refuses_one_by_one_are_dead_lettered_with_the_reason(
    start_enrichment: Start, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    svc = await start_enrichment()
    events = [make_event() for _ in range(6)]
    receiver.refuse = {events[1]["context_id"], events[4]["context_id"]}
    r = await post(client, svc, events)
    assert r.status_code == 200 and r.json()["accepted"] == 6  # enrichment itself took them
    kept = [e["context_id"] for e in events if e["context_id"] not in receiver.refuse]
    await all_arrived(receiver, kept)
    stats = await until(lambda: client.get(f"{svc.url}/api/v1/stats"),
                        lambda r: r.json()["dead_letters"] == 2 and r.json()["queue_depth"] == 0,
                        what="two dead letters and an empty outbox")
    assert stats.json()["dead_letters"] == 2
    log = svc.log_path.read_text()
    assert "events refused by the receiver, dead-lettered" in log
    assert describe_raw(events[1]) in log and "field type conflict" in log


async def test_flags_are_added_and_state_is_never_changed(
    start_enrichment: Start, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    svc = await start_enrichment()
    measurement = {"state_class": "measurement", "unit_of_measurement": "W"}
    cases = [
        (make_event("sensor.power", "120.5", attributes=measurement), []),
        (make_event("sensor.power", "unavailable", attributes=measurement), ["state_unavailable"]),
        (
            make_event("sensor.power", "high", attributes=measurement),
            ["non_numeric_state_for_measurement"],
        ),
        (make_event("sensor.mode", "high", attributes={}), []),  # no state_class: text is fine
        (make_event("light.kitchen", "on", attributes={"brightness": 255}), []),
        (
            make_event("light.kitchen", "on", attributes={"brightness": "255"}),
            ["attributes_type_changed"],
        ),
        (make_event("light.kitchen", "off", attributes={"brightness": "0"}), []),
        (
            make_event("binary_sensor.door", "on", flags=["nonstandard_entity_id"]),
            ["nonstandard_entity_id"],
        ),
        (make_event("sensor.gone", None, old_state="3"), []),
    ]
    events = [e for e, _ in cases]
    assert (await post(client, svc, events)).status_code == 200
    await all_arrived(receiver, [e["context_id"] for e in events])
    for sent, flags in cases:
        got = receiver.one(sent["context_id"])
        assert got["flags"] == flags, (sent["entity_id"], sent["state"])
        assert (got["state"], got["old_state"], got["attributes"]) == (
            sent["state"],
            sent["old_state"],
            sent["attributes"],
        )
    assert (
        await metric(client, svc, "cutover_event_flags_total", flag="attributes_type_changed") == 1
    )


STATES = st.one_of(
    st.sampled_from(
        ["on", "off", "0", "1", "21.50", "unavailable", "unknown", "True", "", " 1 ", "1e3", "NaN"]
    ),
    st.text(max_size=20),
)


@pytest.fixture
def started_once(start_enrichment: Start) -> Callable[[], Awaitable[ServiceProcess]]:
    """One service for all of a hypothesis test's examples (fixtures are not reset between them)."""
    started: list[ServiceProcess] = []

    async def get() -> ServiceProcess:
        if not started:
            started.append(await start_enrichment())
        return started[0]

    return get


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["sensor.t", "switch.s", "binary_sensor.b"]),
            STATES,
            STATES,
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    )
)
async def test_what_arrives_downstream_is_what_was_sent(
    rows: list[tuple[str, str, str, bool]],
    started_once: Callable[[], Awaitable[ServiceProcess]],
    receiver: Receiver,
    client: httpx.AsyncClient,
) -> None:
    svc = await started_once()
    events = [
        make_event(
            entity,
            state,
            old_state=old,
            attributes={"state_class": "measurement"} if measure else {},
        )
        for entity, state, old, measure in rows
    ]
    r = await post(client, svc, events)
    assert (r.status_code, r.json()["accepted"]) == (200, len(events))
    await all_arrived(receiver, [e["context_id"] for e in events], timeout=5)
    for sent in events:
        got = receiver.one(sent["context_id"])
        assert without_enrichment(got) == without_enrichment(sent)
        assert got["flags"][: len(sent["flags"])] == sent["flags"]


# --------------------------------------------------------------------------- the parts, in-process


def test_stall_needs_both_no_progress_and_a_growing_outbox_for_longer_than_the_limit() -> None:
    now = [0.0]
    monitor = StallMonitor(limit_s=10, clock=lambda: now[0])
    monitor.observe(forwarded=100, failures=0, depth=5)
    monitor.observe(forwarded=100, failures=1, depth=5)  # first failure: the clock starts
    now[0] = 11
    monitor.observe(forwarded=100, failures=4, depth=5)
    assert monitor.state() == StallState(False, 11, 0, False), "unreachable, but nothing waits more"
    monitor.observe(forwarded=100, failures=5, depth=9)
    assert monitor.state().stalled
    monitor.observe(forwarded=104, failures=5, depth=5)  # progress: storage takes events again
    assert monitor.state() == StallState(True, 0, 0, False)


def test_attribute_types_are_tracked_per_entity_in_a_bounded_lru() -> None:
    tracker = AttributeTypeTracker(max_entities=2)
    assert tracker.observe("light.a", {"brightness": 255, "rgb": [1, 2, 3]}) == []
    assert tracker.observe("light.a", {"brightness": 254.5, "rgb": None}) == ["rgb"]  # int~float
    assert tracker.observe("light.a", {"brightness": "254"}) == ["brightness"]
    tracker.observe("light.b", {"x": 1})
    tracker.observe("light.c", {"x": 1})  # evicts light.a, the least recently seen
    assert len(tracker) == 2
    assert tracker.observe("light.a", {"brightness": 1}) == []


def test_an_owm_answer_becomes_typed_weather_fields_or_is_refused() -> None:
    doc = {
        "main": {"temp": 21, "humidity": 60, "pressure": 1012, "feels_like": True},
        "wind": {"speed": 3.5, "deg": "north"},
        "weather": [{"main": "Clouds", "description": "few clouds"}],
    }
    assert parse_owm(doc) == {
        "temperature_c": 21.0,
        "humidity_pct": 60.0,
        "pressure_hpa": 1012.0,
        "wind_speed_ms": 3.5,
        "condition": "Clouds",
        "description": "few clouds",
    }
    for broken in ({}, {"main": {"temp": "21"}}, {"main": {"temp": float("nan")}}, []):
        with pytest.raises(ValueError):
            parse_owm(broken)


def test_the_cache_serves_fresh_then_stale_then_nothing() -> None:
    cache = WeatherCache(ttl_s=10, max_stale_s=60)
    assert cache.lookup(0) is None
    cache.put(WeatherSnapshot({"temperature_c": 20.0}, fetched_at_ns=1_000_000_000_000))
    fresh = cache.lookup(1_005_000_000_000)
    assert fresh is not None and fresh.freshness == "fresh"
    assert fresh.weather == {"temperature_c": 20.0, "age_s": 5.0}
    stale = cache.lookup(1_030_000_000_000)
    assert stale is not None and stale.freshness == "stale"
    assert cache.lookup(1_061_000_000_000) is None


async def test_refresher_honours_retry_after_and_keeps_the_last_reading_across_a_restart(
    weather: WeatherServer, tmp_path: Path
) -> None:
    store = tmp_path / "weather.json"
    async with httpx.AsyncClient() as http:

        def refresher(cache: WeatherCache) -> WeatherRefresher:
            return WeatherRefresher(
                cache,
                http,
                weather.url,
                api_key=WEATHER_KEY,
                latitude=52.37,
                longitude=4.89,
                timeout_s=0.5,
                store=store,
            )

        first = refresher(WeatherCache(ttl_s=300, max_stale_s=3600))
        assert await first.fetch_once() == "ok"
        weather.faults.rate_limit(retry_after_s=30)
        assert await first.fetch_once() == "rate_limited"
        assert first.next_delay("rate_limited") >= 30
        weather.faults.clear()
        weather.faults.slow(2)
        started = time.monotonic()
        assert await first.fetch_once() == "timeout"
        assert time.monotonic() - started < 0.8, "the hard timeout bounds the whole call"

        again = refresher(WeatherCache(ttl_s=300, max_stale_s=3600))
        await again.load()
        assert again.cache.snapshot == first.cache.snapshot
