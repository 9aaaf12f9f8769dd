"""websocket-ingestion's Prometheus metrics, on the app's own registry.

The counts live in the objects that do the work (intake, outbox, forwarder, HA client) and are
read at scrape time by a collector: one source per number, nothing added to the hot path. The
one histogram, receive -> durable, is observed once per group commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.common.breaker import BreakerState
from pipeline.common.ha_state import ha_metric_families
from pipeline.ingestion.runtime import Ingestion

__all__ = ["IngestionMetrics"]

# receive -> durable in the outbox: the window a SIGKILL can lose. Sub-millisecond to ~100 ms.
DURABLE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class IngestionMetrics:
    def __init__(
        self, registry: CollectorRegistry, runtime: Callable[[], Ingestion | None]
    ) -> None:
        self.durable_delay = Histogram(
            "cutover_ingest_durable_delay_seconds",
            "Receive from Home Assistant -> durable in the outbox (oldest event of each group)",
            buckets=DURABLE_BUCKETS, registry=registry,
        )
        registry.register(_Collector(runtime))


class _Collector(Collector):
    def __init__(self, runtime: Callable[[], Ingestion | None]) -> None:
        self._runtime = runtime

    def describe(self) -> list[Metric]:
        return []  # the runtime does not exist at registration; names are checked at scrape

    def collect(self) -> Iterator[Metric]:
        rt = self._runtime()
        if rt is None:
            return
        intake, outbox = rt.intake, rt.outbox
        yield _counter("cutover_events_received", "Events received from Home Assistant",
                       intake.received)
        yield _counter("cutover_events_processed", "Events forwarded to enrichment (2xx)",
                       outbox.processed)
        forwarded = CounterMetricFamily("cutover_events_forwarded",
                                        "Events forwarded, by target database", labels=["target"])
        for target, count in outbox.forwarded.items():
            forwarded.add_metric([target], count)
        yield forwarded
        skipped = CounterMetricFamily("cutover_events_skipped",
                                      "Events not the new pipeline's to store", labels=["reason"])
        skipped.add_metric(["not_owner"], outbox.skipped)
        yield skipped
        rejected = CounterMetricFamily("cutover_events_rejected",
                                       "Events refused, by reason", labels=["reason"])
        rejected.add_metric(["malformed"], intake.malformed)
        rejected.add_metric(["undecodable"], outbox.undecodable)
        yield rejected
        yield _gauge("cutover_queue_depth", "Events held: outbox plus not yet durable",
                     rt.queue_depth)
        yield _gauge("cutover_outbox_depth", "Events in the durable outbox", rt.queue.depth)
        yield _gauge("cutover_pending_events", "Events received and not yet durable",
                     intake.pending)
        yield _gauge("cutover_events_waiting", "Events held for routing-table coverage",
                     outbox.waiting)
        yield _gauge("cutover_dead_letters", "Outbox items dead-lettered",
                     rt.queue.dead_letter_count)
        yield _gauge("cutover_breaker_open", "1 while the breaker towards enrichment is not closed",
                     int(rt.forwarder.breaker_state is not BreakerState.CLOSED))
        yield _counter("cutover_forward_failures", "Batches that could not be forwarded",
                       rt.forwarder.stats.failures)
        yield _counter("cutover_outbox_commit_errors", "Failed commits to the outbox",
                       intake.commit_errors)
        recovery = rt.recovery.stats
        yield _counter("cutover_ingest_recovered_events",
                       "Events read back from Home Assistant's history after a gap",
                       recovery.recovered)
        yield _counter("cutover_ingest_recovered_gaps", "Gaps read back from history",
                       recovery.gaps)
        yield _counter("cutover_ingest_unrecovered_gaps",
                       "Gaps longer than the recovery window (their start is lost)",
                       recovery.unrecovered_gaps)
        yield _counter("cutover_ingest_recovery_failures", "Recovery passes that failed",
                       recovery.failures)
        yield from ha_metric_families(rt.ha.state)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)
