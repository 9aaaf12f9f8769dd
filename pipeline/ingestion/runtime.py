"""websocket-ingestion's moving parts, opened and closed together.

Home Assistant client -> `Intake` (memory, then group commit into the durable outbox; after
every subscription `GapRecovery` adds what history says was missed) ->
`OwnershipOutbox` (target decided per event from the routing table) -> `Forwarder` ->
enrichment ``POST /api/v1/events``. Nothing here drops an event: a neighbour that is down,
an open breaker or a routing table that does not cover an event yet all leave it in the
outbox, and /health says so once it lasts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Histogram

from pipeline.common.breaker import BreakerState, CircuitBreaker
from pipeline.common.durable_queue import DurableQueue
from pipeline.common.forwarder import Forwarder
from pipeline.common.ha_client import HomeAssistantClient
from pipeline.common.httpclient import ServiceClient
from pipeline.common.routing import RoutingEntry, RoutingFollower, RoutingTable
from pipeline.common.service import HealthReport
from pipeline.ingestion.intake import Intake
from pipeline.ingestion.ownership import OwnershipOutbox
from pipeline.ingestion.recovery import GapRecovery
from pipeline.ingestion.settings import IngestionSettings

__all__ = ["Ingestion", "routing_for"]

log = logging.getLogger(__name__)

SERVICE = "websocket-ingestion"
EVENTS_PATH = "/api/v1/events"


def routing_for(settings: IngestionSettings) -> RoutingFollower:
    """The routing table source: admin-api when configured, else a final table in which the new
    pipeline owns everything (the world after the migration; a table without valid_until_ns
    covers every time, so nothing ever waits and the follower is never started)."""
    if settings.admin_url:
        return RoutingFollower(settings.admin_url, interval=settings.routing_poll_s)
    owns_all = RoutingTable(entries=(RoutingEntry(effective_from_ns=0, new_percent=100),))
    return RoutingFollower("http://control-plane.unset", initial=owns_all)


@dataclass
class Ingestion:
    settings: IngestionSettings
    queue: DurableQueue
    routing: RoutingFollower
    client: ServiceClient
    outbox: OwnershipOutbox
    forwarder: Forwarder
    intake: Intake
    ha: HomeAssistantClient
    recovery: GapRecovery

    @classmethod
    async def open(cls, settings: IngestionSettings, durable_delay: Histogram | None) -> Ingestion:
        queue = await DurableQueue.open(settings.data_dir / "outbox.sqlite3")
        routing = routing_for(settings)
        client = ServiceClient(
            settings.enrichment_url,
            breaker=CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s),
        )
        outbox = OwnershipOutbox(queue, routing)
        # An event enrichment refuses one by one is dead-lettered here with its reason.
        forwarder = Forwarder(outbox, client, EVENTS_PATH, batch_size=settings.forward_batch,
                              linger_s=settings.forward_linger_s,
                              on_refused=queue.park)
        intake = Intake(queue, on_durable=forwarder.notify, max_group=settings.commit_max_group,
                        durable_delay=durable_delay)
        # The recovery asks history through the client; the client tells it of subscriptions.
        recovery = GapRecovery(
            intake, lambda *args, **fields: ha.call(*args, **fields),
            poll_s=settings.recovery_poll_s, quiet_lag_s=settings.recovery_quiet_lag_s,
            timeout_s=settings.recovery_timeout_s, max_window_s=settings.recovery_max_window_s,
            slice_s=settings.recovery_slice_s)
        ha = HomeAssistantClient(
            settings.ha_url, settings.ha_token.get_secret_value(), intake.on_event,
            ping_interval=settings.ha_ping_interval_s, pong_timeout=settings.ha_pong_timeout_s,
            backoff_base=settings.ha_backoff_base_s,
            user_agent="ha-cutover ingestion",
            before_subscribe=recovery.before_subscribe, on_subscribed=recovery.on_subscribed,
        )
        self = cls(settings, queue, routing, client, outbox, forwarder, intake, ha, recovery)
        if settings.admin_url:
            routing.start()
        intake.start()
        forwarder.start()  # a reopened outbox replays what a crash left in it, at once
        ha.start()
        if queue.depth:
            log.info("outbox reopened with events to forward", extra={"depth": queue.depth})
        return self

    async def aclose(self) -> None:
        """Graceful shutdown: stop input, make durable what was received, forward for up to
        shutdown_flush_s; what is left stays in the outbox for the next start."""
        await self.ha.stop()
        await self.recovery.close()  # an unfinished gap stays open in the durable mark
        await self.intake.close()
        await self.forwarder.stop(flush_timeout=self.settings.shutdown_flush_s)
        await self.routing.stop()
        await self.client.aclose()
        log.info("stopped", extra={"left_in_outbox": self.queue.depth,
                                   "forwarded": self.outbox.processed})
        await self.queue.close()

    # -- what /api/v1/stats, /health and /metrics read -------------------------------------------

    @property
    def queue_depth(self) -> int:
        return self.queue.depth + self.intake.pending

    def stats(self) -> dict[str, Any]:
        intake, outbox, fwd = self.intake, self.outbox, self.forwarder.stats
        return {
            "service": SERVICE,
            "received": intake.received,
            "processed": outbox.processed,
            "queue_depth": self.queue_depth,
            "last_received_ns": intake.last_received_ns,
            "last_processed_ns": outbox.last_forwarded_ns,
            "malformed": intake.malformed,
            "durable": intake.committed,
            "pending": intake.pending,
            "outbox_depth": self.queue.depth,
            "dead_letters": self.queue.dead_letter_count,
            "waiting": outbox.waiting,
            "skipped": {"not_owner": outbox.skipped},
            "forwarded": dict(outbox.forwarded),
            "breaker": self.forwarder.breaker_state.value,
            "forward_batches": fwd.batches,
            "forward_failures": fwd.failures,
            "forward_last_error": fwd.last_error,
            "commit_errors": intake.commit_errors,
            "last_commit_delay_ms": _ms(intake.last_commit_delay_ns),
            "max_commit_delay_ms": _ms(intake.max_commit_delay_ns),
            "ha": self.ha.state.as_dict(),
            "recovery": self.recovery.stats.as_dict(),
            "routing": self._routing_stats(),
        }

    def _routing_stats(self) -> dict[str, Any]:
        if not self.settings.admin_url:
            return {"source": "fixed: new owns everything"}
        table = self.routing.table
        return {
            "source": self.routing.url,
            "stale": self.routing.stale,
            "valid_until_ns": None if table is None else table.valid_until_ns,
            "fetch_errors": self.routing.fetch_errors,
            "conflicts": self.routing.conflicts,
        }

    def health(self) -> HealthReport:
        ha = self.ha.state
        details = {"ha_subscribed": ha.subscribed, "outbox_depth": self.queue.depth,
                   "pending": self.intake.pending, "waiting": self.outbox.waiting,
                   "breaker": self.forwarder.breaker_state.value}
        if ha.fatal_error:
            return HealthReport(healthy=False, reason=ha.fatal_error, details=details)
        down = ha.down_for()
        if down > self.settings.ha_down_after_s:
            return HealthReport(
                healthy=False, details=details,
                reason=f"not connected to Home Assistant for {down:.1f} s ({ha.last_error})")
        if self.intake.failing_since_ns is not None:
            return HealthReport(healthy=False, details=details,
                                reason=f"cannot write to the outbox: {self.intake.last_error}")
        stalled = (time.time_ns() - self.outbox.last_progress_ns) / 1e9
        if self.queue.depth and stalled > self.settings.stalled_after_s:
            if self.outbox.waiting:
                why = "waiting for a routing table that covers them"
            elif self.forwarder.breaker_state is not BreakerState.CLOSED:
                why = (f"breaker {self.forwarder.breaker_state.value}: "
                       f"{self.forwarder.stats.last_error}")
            else:
                why = str(self.forwarder.stats.last_error)
            return HealthReport(
                healthy=False, details=details,
                reason=f"{self.queue.depth} events in the outbox and nothing forwarded for "
                       f"{stalled:.1f} s ({why})")
        return HealthReport(healthy=True, details=details)


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)
