"""FAILURE_MODES.md #14, the writer stops after a refactor: nothing reaches InfluxDB, logs say
"stored".

A refactor of data-storage's batch writer moved the InfluxDB call into a helper and lost the
``await``: ``self.writer.write(lines)`` now makes a coroutine nobody runs. The batch is then
acknowledged, counted as written (so storage's own progress counters and /health look fine)
and logged as stored. Caught by the loss check and by availability, both read from InfluxDB
itself rather than from the service's word.

Run in storage's place: ``python -m tests.mutants.m14_writer_stops``.
"""

from __future__ import annotations

import logging
import time
import warnings

from pipeline.common.batch_writer import BatchWriter
from pipeline.storage.__main__ import main

log = logging.getLogger("tests.mutants.m14")
# "coroutine ... was never awaited": unread, as in production
warnings.simplefilter("ignore", RuntimeWarning)


async def write_refactored(self: BatchWriter,
                           rows: list[tuple[int, bytes]]) -> tuple[list[str], int]:
    lines = [item.decode() for _, item in rows]
    self.writer.write(lines)  # BUG: the missing await; the coroutine is never run
    log.info("stored", extra={"points": len(lines)})
    return lines, time.time_ns()


BatchWriter._write = write_refactored  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
