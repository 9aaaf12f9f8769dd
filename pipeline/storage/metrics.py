"""Storage's Prometheus metrics, registered on the app's own registry (kit_of(app).registry).

Counters of what storage does itself are incremented where it happens. What the BatchWriters
and their durable queues already count (depth, dead letters, write errors) is read at scrape
time by a collector, so there is one source for each number.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.common.batch_writer import BatchWriter
from pipeline.storage.intake import Target

__all__ = ["StorageMetrics"]

# time_fired -> stored: from milliseconds (normal flow) to many minutes (replay after an outage).
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    900.0,
)


class InfluxStatus(Protocol):
    @property
    def influx_up(self) -> bool: ...


class StorageMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "cutover_events_received",
            "Events received in POST /api/v1/events bodies",
            registry=registry,
        )
        self.accepted = Counter(
            "cutover_events_accepted",
            "Events accepted and durable in the write queue",
            ["db"],
            registry=registry,
        )
        self.rejected = Counter(
            "cutover_events_rejected",
            "Events refused individually, by kind of problem",
            ["reason"],
            registry=registry,
        )
        self.duplicates = Counter(
            "cutover_events_duplicate",
            "Accepted events whose key (entity_id, time_fired) was accepted recently for the same "
            "database (written again, harmless)",
            ["db"],
            registry=registry,
        )
        self.processed = Counter(
            "cutover_events_processed",
            "Points InfluxDB accepted (HTTP 204)",
            ["db"],
            registry=registry,
        )
        self.latency = Histogram(
            "cutover_event_latency_seconds",
            "time_fired -> InfluxDB accepted the point",
            ["db"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._writers: Mapping[Target, BatchWriter] = {}
        self._status: InfluxStatus | None = None
        registry.register(_WriterCollector(self))

    def watch(self, writers: Mapping[Target, BatchWriter], status: InfluxStatus) -> None:
        """Scrape these writers from now on (set when the lifespan has opened them)."""
        self._writers = writers
        self._status = status

    def unwatch(self) -> None:
        self._writers = {}
        self._status = None

    @property
    def writers(self) -> Mapping[Target, BatchWriter]:
        return self._writers

    @property
    def status(self) -> InfluxStatus | None:
        return self._status


class _WriterCollector(Collector):
    def __init__(self, metrics: StorageMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        # Describing (not collecting) at registration: the writers do not exist yet then.
        return [*self._families(), _influx_up(True)]

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        depth, dead, errors, last = families
        for db, writer in self._metrics.writers.items():
            depth.add_metric([db], writer.depth)
            dead.add_metric([db], writer.queue.dead_letter_count)
            errors.add_metric([db], writer.write_errors)
            if writer.last_write_ok_ns is not None:
                last.add_metric([db], writer.last_write_ok_ns / 1e9)
        yield from families
        status = self._metrics.status
        if status is not None:
            yield _influx_up(status.influx_up)

    @staticmethod
    def _families() -> tuple[
        GaugeMetricFamily, CounterMetricFamily, CounterMetricFamily, GaugeMetricFamily
    ]:
        return (
            GaugeMetricFamily(
                "cutover_queue_depth", "Lines in the durable write queue", labels=["db"]
            ),
            CounterMetricFamily(
                "cutover_events_dead_lettered",
                "Lines InfluxDB refused for good (in the queue file's dead letters)",
                labels=["db"],
            ),
            CounterMetricFamily(
                "cutover_influx_write_errors", "Failed InfluxDB write requests", labels=["db"]
            ),
            GaugeMetricFamily(
                "cutover_last_write_timestamp_seconds",
                "When InfluxDB last accepted a batch",
                labels=["db"],
            ),
        )


def _influx_up(up: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily("cutover_influx_up", "1 when InfluxDB answers /ping", value=int(up))
