"""enrichment-pipeline's Prometheus metrics, on the app's own registry (kit_of(app).registry).

Counters of things that happen are incremented where they happen; figures that are state
(queue depth, breaker, weather age) are read at scrape time by `LiveCollector`, so they can
never drift from the objects they describe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["EnrichmentMetrics", "LiveCollector", "LiveFigures"]


class EnrichmentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "cutover_events_received", "Events accepted into the durable outbox", registry=registry
        )
        self.rejected = Counter(
            "cutover_events_rejected",
            "Events refused individually (invalid)",
            ["reason"],
            registry=registry,
        )
        self.skipped = Counter(
            "cutover_events_skipped",
            "Events not queued (already accepted)",
            ["reason"],
            registry=registry,
        )
        self.enriched = Counter(
            "cutover_events_enriched",
            "Events by the weather they got: fresh, stale (past the TTL) "
            "or none (weather_enriched=false)",
            ["weather"],
            registry=registry,
        )
        self.flags = Counter(
            "cutover_event_flags", "Validation flags added to events", ["flag"], registry=registry
        )
        self.weather_fetches = Counter(
            "cutover_weather_fetches",
            "Calls to the weather API by outcome",
            ["outcome"],
            registry=registry,
        )
        self.weather_fetch_seconds = Histogram(
            "cutover_weather_fetch_seconds",
            "Duration of calls to the weather API (capped by the timeout)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
            registry=registry,
        )
        self.intake_seconds = Histogram(
            "cutover_intake_seconds",
            "POST /api/v1/events handling time, durable write included",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
            registry=registry,
        )


@dataclass(frozen=True, slots=True)
class LiveFigures:
    processed: int
    forward_failures: int
    queue_depth: int
    dead_letters: int
    breaker_open: bool
    breaker_state: str
    weather_age_s: float | None
    weather_usable: bool


class LiveCollector(Collector):
    def __init__(self, read: Callable[[], LiveFigures]) -> None:
        self._read = read

    def describe(self) -> list[Metric]:
        # Empty: the registry then never calls collect() at registration, before there is state.
        return []

    def collect(self) -> Iterator[Metric]:
        f = self._read()
        yield CounterMetricFamily(
            "cutover_events_processed",
            "Events forwarded to storage and acknowledged",
            value=f.processed,
        )
        yield CounterMetricFamily(
            "cutover_forward_failures",
            "Batches storage did not take (retried)",
            value=f.forward_failures,
        )
        yield GaugeMetricFamily(
            "cutover_queue_depth", "Events in the durable outbox", value=f.queue_depth
        )
        yield GaugeMetricFamily(
            "cutover_dead_letters", "Events parked in the dead-letter table", value=f.dead_letters
        )
        yield GaugeMetricFamily(
            "cutover_breaker_open",
            "1 while the breaker towards storage is not closed",
            value=1 if f.breaker_open else 0,
        )
        state = GaugeMetricFamily(
            "cutover_breaker_state", "Breaker towards storage", labels=["state"]
        )
        for name in ("closed", "open", "half_open"):
            state.add_metric([name], 1 if f.breaker_state == name else 0)
        yield state
        yield GaugeMetricFamily(
            "cutover_weather_usable",
            "1 while events get weather (fresh or stale)",
            value=1 if f.weather_usable else 0,
        )
        if f.weather_age_s is not None:  # no reading yet: no age (absent, not a fake 0)
            yield GaugeMetricFamily(
                "cutover_weather_cache_age_seconds",
                "Age of the cached weather reading",
                value=f.weather_age_s,
            )
