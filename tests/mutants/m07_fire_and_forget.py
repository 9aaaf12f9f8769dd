"""FAILURE_MODES.md #7, fire-and-forget writes: failures are never seen.

data-storage's batch writer starts the InfluxDB write as a background task and returns at once
("the write path must not wait for the database"), so the batch is acknowledged and removed
from the durable queue before InfluxDB has answered. While InfluxDB is down every such write
fails inside a task nobody awaits: nothing is retried, nothing is counted, the queue stays
empty and /health says the writer keeps up. Caught by the loss check during an InfluxDB outage
(``survive_influxdb_outage``).

Run in storage's place: ``python -m tests.mutants.m07_fire_and_forget``.
"""

from __future__ import annotations

import asyncio
import time

from pipeline.common.batch_writer import BatchWriter
from pipeline.storage.__main__ import main

_in_flight: set[asyncio.Task[None]] = set()


def _forget(task: asyncio.Task[None]) -> None:
    _in_flight.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so not even asyncio's "exception never retrieved" shows


async def write_and_forget(self: BatchWriter,
                           rows: list[tuple[int, bytes]]) -> tuple[list[str], int]:
    lines = [item.decode() for _, item in rows]
    task = asyncio.create_task(self.writer.write(lines))  # BUG: never awaited
    _in_flight.add(task)
    task.add_done_callback(_forget)
    return lines, time.time_ns()


BatchWriter._write = write_and_forget  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
