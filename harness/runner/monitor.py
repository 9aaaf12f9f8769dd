"""The monitor: once a second it scrapes every running service (``/health``, ``/api/v1/stats``,
``/metrics``) and reads what InfluxDB received, and keeps the run's time series.

Latency and throughput come from InfluxDB itself (``stored_at - time_fired`` of each new
point), not from the services' own histograms: the judge does not trust the judged. Errors
come from the services' counters (rejected, dropped, failed deliveries, dead letters) plus the
events queued behind an open circuit breaker, over the events the pipeline received. Raw
scrapes go to ``metrics.jsonl`` in the run directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from harness.checks import judge
from harness.checks.judge import Judgement
from harness.results import Sample
from harness.runtime.base import Runtime, ServiceName
from harness.scenario.rules.evidence import CounterWindow
from harness.scenario.topology import HA_CLIENTS, NEW_PATH, PIPELINE_SERVICES
from pipeline.common.events import MEASUREMENT, EventKey
from pipeline.common.ha_history import is_recovered
from pipeline.common.routing import RoutingTable
from pipeline.common.transport import pooled_client
from simulators.home_assistant.ledger import Ledger

# Counters that mean "an event did not go through as it should": rejected, dropped, a failed
# delivery or write attempt, a dead letter. (Not the control plane's own polling errors.)
_ERROR_COUNTER = re.compile(
    r"^cutover_(events_(rejected|dropped|dead_lettered)|forward_failures|"
    r"influx_write_(failures|errors)|outbox_commit_errors)_total$")
_RECEIVED = "cutover_events_received_total"
# Gauges of the ingestion/enrichment outboxes' dead-letter tables; storage's counter.
_DEAD_LETTERS = ("cutover_dead_letters", "cutover_events_dead_lettered_total")
_INGRESS = HA_CLIENTS
_NEW_PATH = NEW_PATH


@dataclass(slots=True)
class Tick:
    """What one scrape saw, kept for window computations."""

    t_s: float
    fired_subscribed: int  # ledger events sent to a subscriber, cumulative
    stored: int  # production points seen, cumulative
    errors: float  # sum of error counters over all services
    received: float  # events received at the pipeline's entry points
    new_errors: float  # error counters of the new pipeline alone
    new_received: float  # events received by ingestion
    healthy: dict[str, bool]
    queue_depth: int
    unstored: int = 0  # events Home Assistant fired that production does not hold yet


@dataclass(slots=True)
class StoredPoint:
    stored_at_ns: int
    latency_ms: float
    path: str  # writer ("legacy"/"new") for production, "shadow" for shadow
    key: EventKey
    state: str
    context_id: str
    written_by_both: bool = False  # both writers' stamps on one production point


@dataclass
class Monitor:
    runtime: Runtime
    ledger: Ledger
    influx_db: str
    shadow_db: str
    run_dir: Path
    started_ns: int
    phase: Callable[[], str]
    routing: Callable[[], tuple[int, bool]]  # (new_percent, shadow) in force now
    # The routing table that decides each event by its time_fired (ownership, shadow).
    table: Callable[[], RoutingTable | None] = lambda: None
    interval: float = 1.0
    lookback_s: float = 30.0  # a point stored later than this after firing is missed live
    ticks: list[Tick] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    points: deque[StoredPoint] = field(default_factory=lambda: deque(maxlen=500_000))
    production_keys: set[EventKey] = field(default_factory=set)
    shadow_states: dict[EventKey, str] = field(default_factory=dict)
    production_states: dict[EventKey, str] = field(default_factory=dict)
    both_wrote: set[EventKey] = field(default_factory=set)  # points both writers stamped
    last_stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # per service
    _ledger_pos: int = 0
    _fired_subscribed: int = 0
    # By key, not by count: events read back from history are stored without having been
    # sent to anyone, so "stored >= sent" can hold while a sent event is still on its way.
    _unstored: set[EventKey] = field(default_factory=set)
    _task: asyncio.Task[None] | None = None
    _client: httpx.AsyncClient | None = None
    _raw: IO[bytes] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _last_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    _depths: dict[str, int] = field(default_factory=dict)
    _refused: float = 0.0  # events queued behind an open breaker, cumulative

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        # The services' own client (httpx over aiohttp): half the CPU per request of httpx's
        # transport (bench/http_request.py), about 20 requests a tick on the loop that sends
        # Home Assistant's events.
        self._client = pooled_client(timeout=2.0)
        self._raw = (self.run_dir / "metrics.jsonl").open("ab")
        self._task = asyncio.create_task(self._loop(), name="monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
        if self._raw is not None:
            self._raw.close()

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.scrape()
            except Exception as exc:  # a scrape failure must not end the run  # noqa: BLE001
                self._write_raw({"t_s": self.now_s(), "monitor_error": repr(exc)})
            await asyncio.sleep(max(0.05, self.interval - (time.monotonic() - started)))

    def now_s(self) -> float:
        return (time.time_ns() - self.started_ns) / 1e9

    async def wait_tick(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    # -- one scrape -------------------------------------------------------------------------------

    async def scrape(self) -> Tick:
        assert self._client is not None
        t_s = self.now_s()
        # influxdb and the pipeline's services: ServiceNames (kept str for Tick's dict[str, ...])
        services = [s for s in ("influxdb", *PIPELINE_SERVICES)
                    if self._started(cast(ServiceName, s))]
        scraped = await asyncio.gather(*(self._scrape_service(cast(ServiceName, s))
                                         for s in services))
        healthy = {s: ok for s, (ok, _, _) in zip(services, scraped, strict=True)}
        errors = received = new_errors = new_received = 0.0
        queue_depth = 0
        for s, (_, stats, metrics) in zip(services, scraped, strict=True):
            if metrics:
                self._last_metrics[s] = metrics
            if stats:
                self.last_stats[s] = stats
            # A service that stopped keeps its last counters: its errors still happened.
        for s, metrics in self._last_metrics.items():
            for name, value in metrics.items():
                base = name.split("{", 1)[0]
                if _ERROR_COUNTER.match(base):
                    errors += value
                    new_errors += value if s in _NEW_PATH else 0.0
                if s in _INGRESS and base == _RECEIVED:
                    received += value
                    new_received += value if s == "ingestion" else 0.0
        for s, (_, stats, metrics) in zip(services, scraped, strict=True):
            depth = int((stats or {}).get("queue_depth") or 0)
            queue_depth += depth
            # Events piling up behind an open circuit breaker are failing to go through even
            # though no request is attempted (the breaker refuses them): count them as errors,
            # as a mesh counts the 503s of a dead backend.
            grew = depth - self._depths.get(s, depth)
            self._depths[s] = depth
            if s in _NEW_PATH and metrics.get("cutover_breaker_open") and grew > 0:
                self._refused += grew
        errors += self._refused
        new_errors += self._refused
        new_points = await self._read_new_points()
        self._advance_ledger()
        tick = Tick(t_s, self._fired_subscribed, len(self.production_keys), errors, received,
                    new_errors, new_received, healthy, queue_depth, len(self._unstored))
        prev = self.ticks[-1] if self.ticks else None
        self.ticks.append(tick)
        new_percent, shadow = self.routing()
        dt = t_s - prev.t_s if prev else t_s
        produced = sum(1 for p in new_points if p.path != "shadow")
        window = self.window(10.0)
        self.samples.append(Sample(
            t_s=round(t_s, 3), phase=self.phase(), new_percent=new_percent, shadow=shadow,
            emitted=len(self.ledger), stored=tick.stored,
            throughput_eps=produced / dt if dt > 0 else 0.0,
            p95_ms=window.p95_ms(("legacy", "new")), error_rate=window.error_rate,
            queue_depth=queue_depth, healthy=healthy))
        self._write_raw({"t_s": t_s, "healthy": healthy, "queue_depth": queue_depth,
                         "errors": errors, "received": received, "stored": tick.stored,
                         "metrics": {s: m for s, (_, _, m) in zip(services, scraped, strict=True)
                                     if m}})
        self._changed.set()
        return tick

    def _started(self, service: ServiceName) -> bool:
        try:
            return self.runtime.running(service)
        except Exception:  # noqa: BLE001 - an unknown service is simply not watched
            return False

    async def _scrape_service(self, service: ServiceName
                              ) -> tuple[bool, dict[str, Any] | None, dict[str, float]]:
        assert self._client is not None
        base = self.runtime.url(service)
        if service == "influxdb":
            try:
                return (await self._client.get(f"{base}/ping")).status_code == 204, None, {}
            except httpx.HTTPError:
                return False, None, {}
        try:
            health, stats, metrics = await asyncio.gather(
                self._client.get(f"{base}/health"), self._client.get(f"{base}/api/v1/stats"),
                self._client.get(f"{base}/metrics"), return_exceptions=True)
        except Exception:  # noqa: BLE001
            return False, None, {}
        ok = isinstance(health, httpx.Response) and health.status_code == 200
        stats_json = (stats.json() if isinstance(stats, httpx.Response)
                      and stats.status_code == 200 else None)
        values: dict[str, float] = {}
        if isinstance(metrics, httpx.Response) and metrics.status_code == 200:
            # Parsing a histogram-laden exposition is pure Python (up to 16 ms measured): on
            # a thread, the loop sending Home Assistant's events gets the GIL back in 5 ms.
            values = await asyncio.to_thread(_metric_values, metrics.text)
        return ok, stats_json, values

    async def _read_new_points(self) -> list[StoredPoint]:
        """Points InfluxDB received since the last scrape.

        New means an event key (entity_id, time_fired) not seen before in that database. (Not
        "a later stored_at": legacy and storage stamp stored_at on their own schedules, so a
        point can land after another one that carries a later stored_at.)
        """
        new: list[StoredPoint] = []
        if not self._started("influxdb"):
            return new
        for db, is_shadow in ((self.influx_db, False), (self.shadow_db, True)):
            seen = self.shadow_states if is_shadow else self.production_states
            # InfluxQL from constants and an int: nothing a client sent.
            q = (f'SELECT "entity_id","context_id","state","stored_at","writer",'  # noqa: S608
                 f'"legacy_stored_at","new_stored_at" FROM "{MEASUREMENT}" '
                 f"WHERE time > now() - {int(self.lookback_s)}s")
            try:
                r = await self._client.get(  # type: ignore[union-attr]
                    f"{self.runtime.url('influxdb')}/query",
                    params={"db": db, "q": q, "epoch": "ns"}, timeout=10)
                body = orjson.loads(r.content)
            except (httpx.HTTPError, ValueError):
                continue
            for result in body.get("results", []):
                for series in result.get("series", []):
                    cols = {c: i for i, c in enumerate(series["columns"])}
                    complete = [cols[c] for c in ("context_id", "state", "stored_at", "writer")]
                    stamps = cols.get("legacy_stored_at"), cols.get("new_stored_at")
                    for row in series["values"]:
                        # InfluxDB 1.x makes a point visible field by field: a query racing
                        # a write can return it with some fields still null (measured here:
                        # 348 torn rows in 309,036 read during writes). Such a point is not
                        # evidence yet; the next scrape reads it whole.
                        if any(row[c] is None for c in complete):
                            continue
                        key = EventKey(row[cols["entity_id"]], row[cols["time"]])
                        stored_at = row[cols["stored_at"]]
                        state = row[cols["state"]]
                        both = all(c is not None and row[c] is not None for c in stamps)
                        # A point seen before counts again only if it was overwritten: with
                        # another state, or by the other writer. That is evidence, not noise.
                        if seen.get(key, None) == state and (not both or key in self.both_wrote):
                            continue
                        seen[key] = state
                        if both:
                            self.both_wrote.add(key)
                        point = StoredPoint(stored_at, (stored_at - row[cols["time"]]) / 1e6,
                                            "shadow" if is_shadow else (row[cols["writer"]] or "?"),
                                            key, state, row[cols["context_id"]], both)
                        new.append(point)
                        self.points.append(point)
                        if not is_shadow:
                            self.production_keys.add(key)
                            self._unstored.discard(key)
        return new

    def _advance_ledger(self) -> None:
        end = len(self.ledger)
        for i in range(self._ledger_pos, end):
            if self.ledger[i].connections:
                self._fired_subscribed += 1
            key = self.ledger.key(i)
            if key not in self.production_keys:
                self._unstored.add(key)
        self._ledger_pos = end

    def _write_raw(self, record: dict[str, Any]) -> None:
        if self._raw is not None:
            self._raw.write(orjson.dumps(record) + b"\n")
            self._raw.flush()

    def last_metrics(self, service: str) -> dict[str, float]:
        """A service's metrics as last scraped (a stopped service keeps its last figures)."""
        return self._last_metrics.get(service, {})

    def dead_letters(self) -> dict[str, int]:
        """Events each service set aside in its dead-letter table, from the last scrape
        (a stopped service keeps its last figures): stored nowhere, but kept with a reason."""
        held: dict[str, int] = {}
        for service, metrics in self._last_metrics.items():
            total = sum(v for k, v in metrics.items() if k.split("{", 1)[0] in _DEAD_LETTERS)
            if total:
                held[service] = int(total)
        return held

    # -- windows ---------------------------------------------------------------------------------

    def window(self, seconds: float, *, since_s: float | None = None) -> Window:
        """Evidence over the last ``seconds`` (or since ``since_s``) of the run."""
        now = self.ticks[-1].t_s if self.ticks else self.now_s()
        start = now - seconds if since_s is None else since_s
        ticks = [t for t in self.ticks if t.t_s >= start]
        before = [t for t in self.ticks if t.t_s < start]
        first = before[-1] if before else (ticks[0] if ticks else None)
        last = ticks[-1] if ticks else None
        cutoff_ns = self.started_ns + int(start * 1e9)
        points = [p for p in self.points if p.stored_at_ns >= cutoff_ns]
        return Window(start, now, first, last, ticks, points)


@dataclass(slots=True)
class Window(CounterWindow[Tick]):
    points: list[StoredPoint]

    def latencies(self, paths: tuple[str, ...]) -> list[float]:
        """The live path's latencies: an event read back from history carries its gap."""
        return sorted(p.latency_ms for p in self.points
                      if p.path in paths and not is_recovered(p.context_id))

    def p95_ms(self, paths: tuple[str, ...]) -> float | None:
        values = self.latencies(paths)
        if not values:
            return None
        return values[min(len(values) - 1, max(0, int(len(values) * 0.95 + 0.999999) - 1))]

    def latency_judgement(self, min_points: int = 20) -> Judgement | None:
        """The judge's view of new against legacy (``harness.checks.judge``): the p95 ratio,
        whether the gap is beyond the noise, with what confidence, on how many points.

        The new pipeline's latency is read from every point it wrote, production or shadow,
        since in the parallel run it writes only shadow. ``min_effect`` is 0 here: the
        scenario's threshold (``perf_drop > 20%``) is the minimum effect that matters.
        """
        return judge.compare(self.latencies(("legacy",)), self.latencies(("new", "shadow")),
                             min_effect=0.0, min_samples=min_points)

    def perf_judgement(self) -> str:
        """The judge's words beside ``perf_drop`` (a rule quotes them in its evidence)."""
        judged = self.latency_judgement()
        return judged.summary() if judged is not None else ""

    def perf_drop(self, min_points: int = 20) -> float | None:
        """How much slower the new pipeline is than legacy, by p95 (0.25 = 25% slower), when
        the judge finds it slower beyond the noise between the two samples; 0.0 when the gap
        is not significant (a noisy p95 on a busy machine is no slowdown), or new is faster.
        None when either side has fewer than ``min_points`` points.
        """
        judged = self.latency_judgement(min_points)
        if judged is None:
            return None
        return judged.effect if judged.slower else 0.0

    @property
    def stalled_seconds(self) -> float:
        """Seconds in the window when events were due but nothing was stored."""
        stalled = 0.0
        for prev, cur in zip(self.ticks, self.ticks[1:], strict=False):
            if cur.stored == prev.stored and prev.fired_subscribed > prev.stored:
                stalled += cur.t_s - prev.t_s
        return stalled


def _metric_values(text: str) -> dict[str, float]:
    """A Prometheus exposition as ``{name{labels}: value}``, without buckets and _created."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith(("_created", "_bucket")):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values
