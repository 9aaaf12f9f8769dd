"""The legacy monolith's moving parts: Home Assistant client -> `LegacyWriter` -> InfluxDB."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Histogram

from pipeline.common.ha_client import HomeAssistantClient
from pipeline.common.influx import InfluxError, InfluxWriter
from pipeline.common.influx_v1 import InfluxV1Writer
from pipeline.common.influx_v2 import InfluxV2Writer
from pipeline.common.rewrites import CountingWriter, WriteCounts
from pipeline.common.routing import RoutingFollower, RoutingTable
from pipeline.common.service import HealthReport
from pipeline.legacy.settings import LegacySettings
from pipeline.legacy.writer import LegacyWriter

__all__ = ["SERVICE", "Legacy", "influx_writer_for", "routing_for"]

log = logging.getLogger(__name__)

SERVICE = "legacy"


def routing_for(settings: LegacySettings) -> RoutingFollower:
    """admin-api's table when configured; else an empty final table: before any migration
    entry legacy owns everything (the monolith before the migration), nothing ever waits."""
    if settings.admin_url:
        return RoutingFollower(settings.admin_url, interval=settings.routing_poll_s)
    return RoutingFollower("http://control-plane.unset", initial=RoutingTable())


def influx_writer_for(settings: LegacySettings) -> InfluxWriter:
    if settings.influx_version == "2":
        assert settings.influx_token is not None and settings.influx_org  # settings validated
        return InfluxV2Writer(settings.influx_url, settings.influx_token.get_secret_value(),
                              settings.influx_org, settings.influx_db,
                              timeout=settings.influx_timeout_s)
    return InfluxV1Writer(settings.influx_url, settings.influx_db,
                          timeout=settings.influx_timeout_s)


@dataclass
class Legacy:
    settings: LegacySettings
    routing: RoutingFollower
    influx: InfluxWriter
    writer: LegacyWriter
    ha: HomeAssistantClient
    write_counts: WriteCounts

    @classmethod
    async def open(cls, settings: LegacySettings, latency: Histogram | None) -> Legacy:
        routing = routing_for(settings)
        influx = influx_writer_for(settings)
        if isinstance(influx, InfluxV1Writer):
            try:  # as the monolith always did at start; a missing database would drop everything
                await influx.ensure_database()
            except InfluxError as exc:
                log.warning("could not create the InfluxDB database (writes will say why)",
                            extra={"database": settings.influx_db, "error": str(exc)})
        write_counts = WriteCounts()
        influx = CountingWriter(influx, write_counts)
        writer = LegacyWriter(
            influx, routing, max_buffer=settings.legacy_buffer,
            batch_size=settings.legacy_batch_size, flush_interval=settings.legacy_flush_interval_s,
            retries=settings.legacy_write_retries, retry_backoff=settings.legacy_retry_backoff_s,
            latency=latency,
        )
        ha = HomeAssistantClient(
            settings.ha_url, settings.ha_token.get_secret_value(), writer.on_event,
            ping_interval=settings.ha_ping_interval_s, pong_timeout=settings.ha_pong_timeout_s,
            backoff_base=settings.ha_backoff_base_s,
            user_agent="ha-cutover legacy",
        )
        if settings.admin_url:
            routing.start()
        writer.start()
        ha.start()
        return cls(settings, routing, influx, writer, ha, write_counts)

    async def aclose(self) -> None:
        """Graceful shutdown: stop reading Home Assistant, write the buffer, close."""
        await self.ha.stop()
        await self.writer.close(timeout=self.settings.shutdown_flush_s)
        await self.routing.stop()
        await self.influx.aclose()
        log.info("stopped", extra={"written": self.writer.written,
                                   "dropped": self.writer.dropped})

    # -- what /api/v1/stats, /health and /metrics read -------------------------------------------

    def stats(self) -> dict[str, Any]:
        w = self.writer
        return {
            "service": SERVICE,
            "received": w.received,
            "processed": w.written,
            "queue_depth": w.depth,
            "last_received_ns": w.last_received_ns,
            "last_processed_ns": w.last_written_ns,
            "written": w.written,
            "malformed": w.malformed,
            "skipped": {"not_owner": w.skipped},
            "dropped": dict(w.dropped),
            "dropped_total": w.dropped_total,
            "dropped_in_doubt": w.dropped_in_doubt,
            "waiting": w.waiting,
            "write_failures": w.write_failures,
            "batches": w.batches,
            # Keys written to InfluxDB more than once: never, when healthy.
            "rewrites": {"production": self.write_counts.stats()},
            "last_error": w.last_error,
            "ha": self.ha.state.as_dict(),
            "routing": self._routing_stats(),
        }

    def _routing_stats(self) -> dict[str, Any]:
        if not self.settings.admin_url:
            return {"source": "fixed: legacy owns everything"}
        table = self.routing.table
        return {
            "source": self.routing.url,
            "stale": self.routing.stale,
            "valid_until_ns": None if table is None else table.valid_until_ns,
            "fetch_errors": self.routing.fetch_errors,
            "conflicts": self.routing.conflicts,
        }

    def health(self) -> HealthReport:
        ha, w = self.ha.state, self.writer
        details = {"ha_subscribed": ha.subscribed, "buffered": w.depth, "waiting": w.waiting,
                   "dropped_total": w.dropped_total}
        if ha.fatal_error:
            return HealthReport(healthy=False, reason=ha.fatal_error, details=details)
        down = ha.down_for()
        if down > self.settings.ha_down_after_s:
            return HealthReport(
                healthy=False, details=details,
                reason=f"not connected to Home Assistant for {down:.1f} s ({ha.last_error})")
        if w.failing_since_ns is not None:
            failing = (time.time_ns() - w.failing_since_ns) / 1e9
            return HealthReport(
                healthy=False, details=details,
                reason=f"InfluxDB writes failing for {failing:.1f} s ({w.last_error}); "
                       f"{w.dropped_total} events dropped so far")
        stalled = (time.time_ns() - w.last_progress_ns) / 1e9
        if w.depth and stalled > self.settings.stalled_after_s:
            why = "waiting for a routing table that covers them" if w.waiting else w.last_error
            return HealthReport(
                healthy=False, details=details,
                reason=f"{w.depth} events buffered and nothing written for {stalled:.1f} s ({why})")
        return HealthReport(healthy=True, details=details)
