"""Whether storage can do its job, judged from progress rather than from being alive.

A background task pings InfluxDB, creates the databases once it answers (and again if they
vanish), and samples each BatchWriter's counters. /health is then answered from that state:

- 503 "influxdb unreachable" until the databases exist, and after InfluxDB stopped answering
  /ping for more than ``unreachable_after_s``;
- 503 when every write to a database has been failing for more than ``unreachable_after_s``;
- 503 when a queue has held lines with no successful write for more than ``stalled_after_s``
  (FAILURE_MODES.md #10, #14: "logs say stored" is not evidence, a moving counter is).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from pipeline.common.aio import within
from pipeline.common.batch_writer import BatchWriter
from pipeline.common.influx import InfluxError
from pipeline.common.service import HealthReport
from pipeline.storage.backend import InfluxBackend
from pipeline.storage.intake import Target

__all__ = ["InfluxMonitor", "WriterWatch"]

log = logging.getLogger(__name__)

PING_TIMEOUT_S = 1.0


class WriterWatch:
    """Progress of one BatchWriter, from periodic samples (it keeps counters, not times)."""

    def __init__(self, writer: BatchWriter, now: float) -> None:
        self.writer = writer
        self.last_progress = now
        self.failing_since: float | None = None
        self._moved = self._lines_moved()
        self._errors = writer.write_errors

    def _lines_moved(self) -> int:
        # Dead-lettered lines left the queue too: a refused line is not a stalled writer.
        return self.writer.points_written + self.writer.dead_lettered

    def sample(self, now: float) -> None:
        moved, errors = self._lines_moved(), self.writer.write_errors
        if moved != self._moved or self.writer.depth == 0:
            self.last_progress = now
            self.failing_since = None
        elif errors != self._errors and self.failing_since is None:
            self.failing_since = now
        self._moved, self._errors = moved, errors

    def failing_for(self, now: float) -> float:
        return 0.0 if self.failing_since is None else now - self.failing_since

    def stalled_for(self, now: float) -> float:
        return 0.0 if self.writer.depth == 0 else now - self.last_progress


class InfluxMonitor:
    def __init__(
        self,
        backend: InfluxBackend,
        writers: Mapping[Target, BatchWriter],
        databases: Mapping[Target, str],
        *,
        unreachable_after_s: float,
        stalled_after_s: float,
        interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._databases = dict(databases)
        self._unreachable_after = unreachable_after_s
        self._stalled_after = stalled_after_s
        self._interval = interval_s
        self._clock = clock
        now = clock()
        self._watches = {target: WriterWatch(writer, now) for target, writer in writers.items()}
        self.influx_up = False
        self.databases_ready = False
        self.unreachable_since: float | None = now
        self.last_error: str | None = None

    async def run(self) -> None:
        """Tick forever (cancel to stop); a failing tick is logged, never fatal."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.tick()
            except Exception:
                log.exception("health monitor tick failed")

    async def tick(self) -> None:
        now = self._clock()
        was_up = self.influx_up
        try:
            self.influx_up = await within(self._backend.ping(), PING_TIMEOUT_S)
        except TimeoutError:
            self.influx_up = False
        if self.influx_up:
            self.unreachable_since = None
        elif self.unreachable_since is None:
            self.unreachable_since = now
        if was_up != self.influx_up:
            log.warning("InfluxDB is %s", "reachable" if self.influx_up else "unreachable")
        for watch in self._watches.values():
            watch.sample(now)
        if self.influx_up and (not self.databases_ready or self._database_missing()):
            await self._ensure_databases()

    def _database_missing(self) -> bool:
        # A database dropped under a running storage: writes fail with a retryable "not found"
        # forever (the queue holds the data), so create it again rather than wait for an operator.
        return any(
            w.failing_since is not None and "not found" in (w.writer.last_error or "")
            for w in self._watches.values()
        )

    async def _ensure_databases(self) -> None:
        try:
            await self._backend.ensure_databases(list(self._databases.values()))
        except InfluxError as exc:
            self.last_error = str(exc)
            log.warning(
                "cannot create the InfluxDB databases yet; retrying",
                extra={"error": self.last_error},
            )
            return
        if not self.databases_ready:
            log.info(
                "InfluxDB databases ready", extra={"databases": list(self._databases.values())}
            )
        self.databases_ready = True

    def report(self) -> HealthReport:
        now = self._clock()
        problems: list[str] = []
        if not self.influx_up and (
            not self.databases_ready
            or (
                self.unreachable_since is not None
                and now - self.unreachable_since > self._unreachable_after
            )
        ):
            down_for = 0.0 if self.unreachable_since is None else now - self.unreachable_since
            problems.append(f"influxdb unreachable (for {down_for:.1f} s)")
        elif not self.databases_ready:
            problems.append(f"cannot create the InfluxDB databases: {self.last_error}")
        details: dict[str, Any] = {
            "influx_up": self.influx_up,
            "databases_ready": self.databases_ready,
        }
        for target, watch in self._watches.items():
            writer, database = watch.writer, self._databases[target]
            if watch.failing_for(now) > self._unreachable_after:
                problems.append(
                    f"every write to {database} failing for {watch.failing_for(now):.1f} s: "
                    f"{writer.last_error}"
                )
            if watch.stalled_for(now) > self._stalled_after:
                problems.append(
                    f"{target} queue holds {writer.depth} lines with no successful write "
                    f"for {watch.stalled_for(now):.1f} s"
                )
            details[target] = {
                "database": database,
                "queue_depth": writer.depth,
                "last_write_ns": writer.last_write_ok_ns,
                "last_error": writer.last_error,
            }
        return HealthReport(
            healthy=not problems, reason="; ".join(problems) or None, details=details
        )
