"""The legacy monolith's Prometheus metrics, on the app's own registry.

Counts live in `LegacyWriter` and the HA client and are read at scrape time; the latency
histogram (time_fired -> InfluxDB accepted the point) is observed per written event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.common.ha_state import ha_metric_families
from pipeline.legacy.runtime import Legacy
from pipeline.legacy.writer import DROP_REASONS

__all__ = ["LegacyMetrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class LegacyMetrics:
    def __init__(self, registry: CollectorRegistry, runtime: Callable[[], Legacy | None]) -> None:
        self.latency = Histogram(
            "cutover_event_latency_seconds", "time_fired -> InfluxDB accepted the point",
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        registry.register(_Collector(runtime))


class _Collector(Collector):
    def __init__(self, runtime: Callable[[], Legacy | None]) -> None:
        self._runtime = runtime

    def describe(self) -> list[Metric]:
        return []  # the runtime does not exist at registration

    def collect(self) -> Iterator[Metric]:
        rt = self._runtime()
        if rt is None:
            return
        w = rt.writer
        yield CounterMetricFamily("cutover_events_received", "Events received from Home Assistant",
                                  value=w.received)
        yield CounterMetricFamily("cutover_events_processed", "Events written to InfluxDB",
                                  value=w.written)
        skipped = CounterMetricFamily("cutover_events_skipped", "Events not legacy's to write",
                                      labels=["reason"])
        skipped.add_metric(["not_owner"], w.skipped)
        yield skipped
        dropped = CounterMetricFamily(
            "cutover_events_dropped", "Events lost by the monolith, by reason", labels=["reason"])
        for reason in (*DROP_REASONS, *(r for r in w.dropped if r not in DROP_REASONS)):
            dropped.add_metric([reason], w.dropped.get(reason, 0))
        yield dropped
        rejected = CounterMetricFamily("cutover_events_rejected", "Events refused, by reason",
                                       labels=["reason"])
        rejected.add_metric(["malformed"], w.malformed)
        yield rejected
        yield GaugeMetricFamily("cutover_queue_depth", "Events in the in-memory buffer",
                                value=w.depth)
        yield GaugeMetricFamily("cutover_events_waiting", "Events held for routing coverage",
                                value=w.waiting)
        yield CounterMetricFamily("cutover_influx_write_failures", "Failed InfluxDB write attempts",
                                  value=w.write_failures)
        yield from ha_metric_families(rt.ha.state)
