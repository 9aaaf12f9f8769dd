"""The storage service's state and operations, independent of HTTP.

One `BatchWriter` per database (production and shadow, chosen by `Event.target`), each with
its durable queue in the data directory: an accepted event is in that queue before the
sender hears 200, and leaves it only after InfluxDB's 204 (or as a dead letter, with the
reason).

A redelivered event (its sender lost our 200 and sent it again) whose first delivery is
already durable is counted and not written again: it would land on the same point, and a
writer that never writes a key twice makes its own write count (`WriteCounts`, in the stats)
a check on itself. A redelivery whose first delivery is still being made durable waits for
it, so its 200 still means durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from pipeline.common.batch_writer import BatchWriter
from pipeline.common.events import EventKey
from pipeline.common.rewrites import WriteCounts
from pipeline.storage.backend import InfluxBackend, make_writer
from pipeline.storage.dedup import RecentIds
from pipeline.storage.health import InfluxMonitor
from pipeline.storage.intake import TARGETS, Rejection, Target, judge_events
from pipeline.storage.metrics import StorageMetrics
from pipeline.storage.query import (
    EventQuery,
    count_statement,
    event_from_row,
    result_rows,
    select_statement,
)
from pipeline.storage.settings import StorageSettings

__all__ = ["Accepted", "EventStore", "StoreUnavailable"]

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The events could not be made durable (disk trouble, shutting down): the sender must retry."""


@dataclass(frozen=True, slots=True)
class Accepted:
    accepted: int
    rejected: list[Rejection]
    duplicates: int


class EventStore:
    """Open with `EventStore.open`, close with `aclose` (flushes both writers)."""

    SERVICE = "storage"

    def __init__(
        self,
        settings: StorageSettings,
        metrics: StorageMetrics,
        backend: InfluxBackend,
        writers: dict[Target, BatchWriter],
        write_counts: dict[Target, WriteCounts] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.backend = backend
        self.writers = writers
        self.write_counts = write_counts or {t: WriteCounts(settings.dedup_window) for t in TARGETS}
        self.databases = _databases(settings)
        self.recent = {target: RecentIds(settings.dedup_window) for target in TARGETS}
        # Keys being made durable right now, with the submit that carries them.
        self._inflight: dict[Target, dict[EventKey, asyncio.Future[None]]] = {
            target: {} for target in TARGETS}
        self.monitor = InfluxMonitor(
            backend,
            writers,
            self.databases,
            unreachable_after_s=settings.unreachable_after_s,
            stalled_after_s=settings.stalled_after_s,
        )
        self.received = 0
        self.accepted = 0
        self.rejected = 0
        self.duplicates = 0
        self.last_received_ns: int | None = None
        self._monitor_task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, settings: StorageSettings, metrics: StorageMetrics) -> EventStore:
        """Open both queues (replaying what a previous run left), start writing and watching."""
        backend = InfluxBackend(settings)
        writers: dict[Target, BatchWriter] = {}
        write_counts = {target: WriteCounts(settings.dedup_window) for target in TARGETS}
        try:
            for target, database in _databases(settings).items():
                writers[target] = await BatchWriter.open(
                    make_writer(settings, database, write_counts[target]),
                    settings.data_dir / f"{target}.sqlite3",
                    max_batch=settings.max_batch,
                    flush_interval=settings.flush_interval_s,
                    backoff_cap=settings.retry_cap_s,
                    on_written=_observer(metrics, target),
                    ack_as="new",  # each 204 recorded: latency is measured to it (acks.py)
                )
        except BaseException:
            for writer in writers.values():
                await writer.aclose(timeout=0)
            await backend.aclose()
            raise
        store = cls(settings, metrics, backend, writers, write_counts)
        metrics.watch(writers, store.monitor)
        for target, writer in writers.items():
            if writer.depth:
                log.info("replaying queued lines", extra={"db": target, "depth": writer.depth})
        # One tick before serving, so /health is right from the first request; InfluxDB being
        # down is not an error here: the queues take events and the monitor keeps retrying.
        await store.monitor.tick()
        store._monitor_task = asyncio.create_task(
            store.monitor.run(), name="storage-influx-monitor"
        )
        return store

    async def accept(self, items: Sequence[Any]) -> Accepted:
        """Judge a batch, make the accepted events durable, count duplicates."""
        now = time.time_ns()
        # stored_at = when storage accepted the event (it is in the point before it is written);
        # the 204 that made it durable is recorded against this stamp (acks.py).
        intake = judge_events(items, stored_at_ns=now)
        self.received += len(items)
        self.last_received_ns = now
        self.metrics.received.inc(len(items))
        for rejection in intake.rejected:
            self.metrics.rejected.labels(reason=rejection.kind).inc()
        self.rejected += len(intake.rejected)
        fresh, waits, duplicates = self._set_aside_redeliveries(intake.lines, intake.keys)
        mine = asyncio.get_running_loop().create_future()
        for target, (_, keys) in fresh.items():
            for key in keys:
                self._inflight[target][key] = mine
        try:
            await asyncio.gather(
                *(self.writers[target].submit(lines) for target, (lines, _) in fresh.items()
                  if lines)
            )
        except Exception as exc:  # submit raises only when it could not store durably
            mine.set_exception(exc)
            mine.exception()  # retrieved: a waiting redelivery sees it, nobody else must
            log.exception("could not queue accepted events durably")
            raise StoreUnavailable(f"could not store the events durably: {exc}") from exc
        else:
            mine.set_result(None)
            # Keys count as seen only once durable, so a failed submit that the sender
            # retries is not set aside as a duplicate.
            for target, (_, keys) in fresh.items():
                self.recent[target].record(keys)
        finally:
            if not mine.done():  # cancelled mid-submit: a waiting redelivery must not hang
                mine.set_exception(StoreUnavailable("the first delivery was cancelled"))
                mine.exception()
            for target, (_, keys) in fresh.items():
                inflight = self._inflight[target]
                for key in keys:
                    if inflight.get(key) is mine:
                        del inflight[key]
        if waits:
            try:
                await asyncio.gather(*waits)
            except Exception as exc:  # the first delivery failed: this one must be retried
                raise StoreUnavailable(f"could not store the events durably: {exc}") from exc
        for target, keys in intake.keys.items():
            if keys:
                self.metrics.accepted.labels(db=target).inc(len(keys))
            if duplicates[target]:
                self.metrics.duplicates.labels(db=target).inc(duplicates[target])
        total = sum(duplicates.values())
        self.accepted += intake.accepted
        self.duplicates += total
        return Accepted(intake.accepted, intake.rejected, total)

    def _set_aside_redeliveries(
        self, lines: dict[Target, list[str]], keys: dict[Target, list[EventKey]]
    ) -> tuple[dict[Target, tuple[list[str], list[EventKey]]], list[asyncio.Future[None]],
               dict[Target, int]]:
        """Split a batch into what must be written and the redeliveries: of events already
        durable (nothing to do) or being made durable (wait for that submit)."""
        fresh: dict[Target, tuple[list[str], list[EventKey]]] = {}
        waits: dict[int, asyncio.Future[None]] = {}
        duplicates: dict[Target, int] = {}
        for target in lines:
            recent, inflight = self.recent[target], self._inflight[target]
            out_lines: list[str] = []
            out_keys: list[EventKey] = []
            seen: set[EventKey] = set()
            dup = 0
            for line, key in zip(lines[target], keys[target], strict=True):
                if key in seen or key in recent:
                    dup += 1
                elif (pending := inflight.get(key)) is not None:
                    dup += 1
                    waits[id(pending)] = pending
                else:
                    seen.add(key)
                    out_lines.append(line)
                    out_keys.append(key)
            fresh[target] = (out_lines, out_keys)
            duplicates[target] = dup
        return fresh, list(waits.values()), duplicates

    async def events(self, query: EventQuery) -> list[dict[str, Any]]:
        results = await self.backend.query(self.databases[query.db], select_statement(query))
        return [event_from_row(row) for row in result_rows(results)]

    async def count(self, query: EventQuery) -> int:
        results = await self.backend.query(self.databases[query.db], count_statement(query))
        rows = result_rows(results)
        return int(rows[0]["count"]) if rows else 0

    def stats(self) -> dict[str, Any]:
        writers = self.writers
        last_written = [
            w.last_write_ok_ns for w in writers.values() if w.last_write_ok_ns is not None
        ]
        return {
            "service": self.SERVICE,
            "received": self.received,
            "processed": sum(w.points_written for w in writers.values()),
            "queue_depth": sum(w.depth for w in writers.values()),
            "queue_depth_by_db": {target: w.depth for target, w in writers.items()},
            "last_received_ns": self.last_received_ns,
            "last_processed_ns": max(last_written) if last_written else None,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            # Keys this process wrote to InfluxDB more than once: never, when healthy.
            "rewrites": {target: counts.stats() for target, counts in self.write_counts.items()},
            "dead_lettered": sum(w.queue.dead_letter_count for w in writers.values()),
            "influx_up": self.monitor.influx_up,
            "databases": {
                target: {
                    "database": self.databases[target],
                    "queue_depth": w.depth,
                    "processed": w.points_written,
                    "dead_lettered": w.queue.dead_letter_count,
                    "write_errors": w.write_errors,
                    "last_processed_ns": w.last_write_ok_ns,
                    "last_error": w.last_error,
                }
                for target, w in writers.items()
            },
        }

    async def aclose(self) -> None:
        """Graceful shutdown: stop watching, write what the queues hold (bounded), close."""
        if self._monitor_task is not None:
            self._monitor_task.cancel()
            with suppress(asyncio.CancelledError):
                await self._monitor_task
        depth = sum(w.depth for w in self.writers.values())
        log.info("flushing write queues", extra={"depth": depth})
        await asyncio.gather(
            *(w.aclose(timeout=self.settings.shutdown_flush_s) for w in self.writers.values())
        )
        self.metrics.unwatch()
        await self.backend.aclose()


def _databases(settings: StorageSettings) -> dict[Target, str]:
    return {"production": settings.influx_db, "shadow": settings.influx_shadow_db}


def _observer(metrics: StorageMetrics, target: Target) -> Callable[[list[str]], None]:
    """BatchWriter's on_written hook: count the points and observe time_fired -> written."""
    latency = metrics.latency.labels(db=target)
    processed = metrics.processed.labels(db=target)

    def on_written(lines: list[str]) -> None:
        now = time.time_ns()
        for line in lines:
            # The point's timestamp (= time_fired) is the last token of a line-protocol line.
            latency.observe((now - int(line[line.rfind(" ") + 1 :])) / 1e9)
        processed.inc(len(lines))

    return on_written
