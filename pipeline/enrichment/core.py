"""The enrichment service's moving parts and what they do per request, without the HTTP layer.

Path of an event: ``ingest`` validates it, enriches it (cached weather, flags: synchronous,
no waiting on anything), appends it to the durable outbox and only then lets the request answer
200; the `Forwarder` drains the outbox to storage in order and removes events only once
storage acknowledged them. Enriching before the outbox, not after, keeps one queue and one
fsync per batch: enrichment is a cheap in-memory step, and an event in the outbox is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any

import httpx

from pipeline.common.breaker import BreakerState, CircuitBreaker
from pipeline.common.durable_queue import DurableQueue
from pipeline.common.events import EventKey, dumps_event
from pipeline.common.forwarder import Forwarder
from pipeline.common.httpclient import ServiceClient
from pipeline.common.service import HealthReport

from .dedupe import RecentIds
from .enricher import Enricher
from .flags import AttributeTypeTracker, Flagger
from .intake import parse_batch
from .metrics import EnrichmentMetrics, LiveFigures
from .settings import EnrichmentSettings
from .stall import StallMonitor
from .weather import FetchOutcome, WeatherCache, WeatherRefresher

__all__ = ["SERVICE_NAME", "EnrichmentService", "OutboxUnavailable"]

log = logging.getLogger(__name__)

SERVICE_NAME = "enrichment-pipeline"
_WATCH_INTERVAL_S = 0.25


class OutboxUnavailable(Exception):
    """The durable outbox refused a write: the batch is not accepted (the sender retries)."""


class EnrichmentService:
    """Built without I/O; `start` opens the outbox and starts the background tasks."""

    def __init__(self, settings: EnrichmentSettings, metrics: EnrichmentMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.cache = WeatherCache(settings.weather_ttl_s, settings.weather_max_stale_s)
        self.enricher = Enricher(
            self.cache, Flagger(AttributeTypeTracker(settings.attribute_type_entities))
        )
        self.recent = RecentIds(settings.dedupe_window)
        self.stall = StallMonitor(settings.health_stall_s)
        self.received = 0
        self.rejected = 0
        self.duplicates = 0
        self.by_weather: Counter[str] = Counter()
        self.last_received_ns: int | None = None
        self.outbox_error: str | None = None
        self.queue: DurableQueue | None = None
        self.forwarder: Forwarder | None = None
        self.refresher: WeatherRefresher | None = None
        self._client: ServiceClient | None = None
        self._weather_http: httpx.AsyncClient | None = None
        self._watch: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        self.queue = await DurableQueue.open(s.data_dir / "outbox.sqlite")
        breaker = CircuitBreaker(s.breaker_failures, s.breaker_reset_s, on_change=_log_breaker)
        self._client = ServiceClient(s.storage_url, breaker=breaker)
        # No poison handler: a batch storage refuses as a whole (4xx) means the two services
        # disagree on the schema (FAILURE_MODES.md #1). Holding it keeps every event and turns
        # /health 503 while the outbox grows; dead-lettering would hide the outage instead.
        # An event storage refuses one by one (inside a 200) is dead-lettered, with its reason.
        self.forwarder = Forwarder(self.queue, self._client, batch_size=s.batch_size,
                                   linger_s=s.forward_linger_s,
                                   on_refused=self.queue.park)
        self.forwarder.start()
        if s.weather_api_key is not None and s.weather_api_key.get_secret_value():
            # A client of its own: a hung weather API must not hold connections storage needs.
            self._weather_http = httpx.AsyncClient(
                timeout=httpx.Timeout(s.weather_timeout_s),
                limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
            )
            self.refresher = WeatherRefresher(
                self.cache,
                self._weather_http,
                s.weather_url,
                api_key=s.weather_api_key.get_secret_value(),
                latitude=s.latitude,
                longitude=s.longitude,
                timeout_s=s.weather_timeout_s,
                store=s.data_dir / "weather.json",
                on_outcome=self._on_weather_fetch,
            )
            await self.refresher.load()
            self.refresher.start()
        else:
            log.warning("CUTOVER_WEATHER_API_KEY is not set: events pass without weather")
        self._watch = asyncio.create_task(self._watch_forwarding(), name="stall-watch")
        log.info(
            "enrichment started", extra={"queue_depth": self.queue.depth, "storage": s.storage_url}
        )

    async def stop(self) -> None:
        """Graceful: stop fetching weather, flush the outbox while storage takes it, close."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.refresher is not None:
            await self.refresher.stop()
        if self.forwarder is not None:
            await self.forwarder.stop(flush_timeout=5.0)
        if self._client is not None:
            await self._client.aclose()
        if self._weather_http is not None:
            await self._weather_http.aclose()
        if self.queue is not None:
            log.info("enrichment stopped", extra={"left_in_outbox": self.queue.depth})
            await self.queue.close()

    # -- the hot path ------------------------------------------------------------------------

    async def ingest(self, body: bytes) -> dict[str, Any]:
        """Handle one POST body; returns the answer once the accepted events are durable.

        Raises `BadRequest` (not a batch) or `OutboxUnavailable` (nothing was accepted)."""
        assert self.queue is not None and self.forwarder is not None, "not started"
        started = time.perf_counter()
        events, rejected = parse_batch(body)
        for r in rejected:
            self.metrics.rejected.labels(reason=r.kind).inc()
        if rejected:
            self.rejected += len(rejected)
            log.warning(
                "events rejected", extra={"count": len(rejected), "first": rejected[0].to_json()}
            )

        fresh = []
        keys = []
        in_batch: set[tuple[EventKey, str]] = set()
        for event in events:
            # By the event's key, never its context: one action's changes share a context.
            key = (event.key, event.target)  # the same event may go to both databases
            if key in self.recent or key in in_batch:
                continue
            in_batch.add(key)
            keys.append(key)
            fresh.append(event)
        duplicates = len(events) - len(fresh)

        now_ns = time.time_ns()
        enriched = [self.enricher.enrich(e, now_ns) for e in fresh]
        try:
            await self.queue.put_many([dumps_event(x.event) for x in enriched])
        except Exception as exc:
            self.outbox_error = repr(exc)
            log.exception("durable outbox write failed; batch not accepted")
            raise OutboxUnavailable(f"could not make the events durable: {exc!r}") from exc
        self.outbox_error = None
        self.forwarder.notify()
        self.recent.add_all(keys)

        if fresh:
            self.received += len(fresh)
            self.last_received_ns = now_ns
            self.metrics.received.inc(len(fresh))
        if duplicates:
            before, self.duplicates = self.duplicates, self.duplicates + duplicates
            self.metrics.skipped.labels(reason="duplicate").inc(duplicates)
            if before.bit_length() != self.duplicates.bit_length():  # at 1, 2, 4, 8... in all
                # A resend after a lost answer gives a few; a steady stream means something
                # delivers every event twice, or events are being taken for each other.
                log.warning("duplicate events skipped", extra={
                    "count": duplicates, "duplicates_total": self.duplicates,
                    "received_total": self.received})
        weather = Counter(x.weather for x in enriched)
        self.by_weather.update(weather)
        for use, n in weather.items():
            self.metrics.enriched.labels(weather=use).inc(n)
        for flag, n in Counter(f for x in enriched for f in x.new_flags).items():
            self.metrics.flags.labels(flag=flag).inc(n)
        self.metrics.intake_seconds.observe(time.perf_counter() - started)
        return {
            "accepted": len(events),
            "rejected": [r.to_json() for r in rejected],
            "duplicates": duplicates,
        }

    # -- observation -------------------------------------------------------------------------

    def _on_weather_fetch(self, outcome: FetchOutcome, seconds: float) -> None:
        self.metrics.weather_fetches.labels(outcome=outcome).inc()
        self.metrics.weather_fetch_seconds.observe(seconds)

    async def _watch_forwarding(self) -> None:
        while True:
            self._observe_forwarding()
            await asyncio.sleep(_WATCH_INTERVAL_S)

    def _observe_forwarding(self) -> None:
        if self.forwarder is None or self.queue is None:
            return
        stats = self.forwarder.stats
        self.stall.observe(
            forwarded=stats.forwarded,
            failures=stats.failures + stats.breaker_waits,
            depth=self.queue.depth,
        )

    def weather_status(self) -> dict[str, Any]:
        if self.refresher is None:
            return {"status": "disabled", "reason": "CUTOVER_WEATHER_API_KEY not set"}
        found = self.cache.lookup(time.time_ns())
        age = self.cache.age_s()
        return {
            "status": "unavailable" if found is None else found.freshness,
            "age_s": None if age is None else round(age, 3),
            "ttl_s": self.cache.ttl_s,
            "last_outcome": self.refresher.last_outcome,
            "last_error": self.refresher.last_error,
            "consecutive_failures": self.refresher.consecutive_failures,
        }

    def live_figures(self) -> LiveFigures:
        forwarder, queue = self.forwarder, self.queue
        breaker = forwarder.breaker_state if forwarder is not None else BreakerState.CLOSED
        return LiveFigures(
            processed=forwarder.stats.forwarded if forwarder else 0,
            forward_failures=forwarder.stats.failures if forwarder else 0,
            queue_depth=queue.depth if queue else 0,
            dead_letters=queue.dead_letter_count if queue else 0,
            breaker_open=breaker is not BreakerState.CLOSED,
            breaker_state=breaker.value,
            weather_age_s=self.cache.age_s(),
            weather_usable=self.cache.lookup(time.time_ns()) is not None,
        )

    def stats(self) -> dict[str, Any]:
        forwarder, queue = self.forwarder, self.queue
        return {
            "service": SERVICE_NAME,
            "received": self.received,
            "processed": forwarder.stats.forwarded if forwarder else 0,
            "queue_depth": queue.depth if queue else 0,
            "last_received_ns": self.last_received_ns,
            "last_processed_ns": forwarder.stats.last_success_ns if forwarder else None,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "dead_letters": queue.dead_letter_count if queue else 0,
            "enriched": {k: self.by_weather[k] for k in ("fresh", "stale", "none")},
            "breaker": forwarder.breaker_state.value if forwarder else None,
            "forward_batches": forwarder.stats.batches if forwarder else 0,
            "forward_failures": forwarder.stats.failures if forwarder else 0,
            "last_forward_error": forwarder.stats.last_error if forwarder else None,
            "weather": self.weather_status(),
        }

    async def health(self) -> HealthReport:
        if self.queue is None or self.forwarder is None:
            return HealthReport(healthy=False, reason="starting")
        self._observe_forwarding()
        stall = self.stall.state()
        weather = self.weather_status()
        details: dict[str, Any] = {
            "queue_depth": self.queue.depth,
            "breaker": self.forwarder.breaker_state.value,
            "storage": {
                "reachable": stall.reachable,
                "unreachable_for_s": round(stall.unreachable_for_s, 3),
                "outbox_growth": stall.growth,
                "last_error": self.forwarder.stats.last_error,
            },
            "weather": weather,
        }
        degraded = []
        if weather["status"] != "fresh":
            degraded.append(f"weather {weather['status']}")
        if not stall.reachable:
            degraded.append("storage unreachable")
        details["degraded"] = degraded
        if self.outbox_error is not None:
            return HealthReport(
                healthy=False,
                reason=f"durable outbox failing: {self.outbox_error}",
                details=details,
            )
        if stall.stalled:
            return HealthReport(
                healthy=False,
                reason=f"storage unreachable for {stall.unreachable_for_s:.1f}s while the outbox "
                f"grew by {stall.growth} events",
                details=details,
            )
        return HealthReport(healthy=True, details=details)


def _log_breaker(old: BreakerState, new: BreakerState) -> None:
    log.warning("breaker towards storage %s -> %s", old.value, new.value)
