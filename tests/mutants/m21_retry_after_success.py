"""Issue 13: a retry wrapper that also retries a success, so every batch is written twice.

data-storage's batch writer gained a "write, then confirm" loop: it writes a batch, and on 204
writes it again "to be sure it landed" before moving on. Every point is written twice with
the same content, InfluxDB merges each pair silently, production and shadow are complete and
correct. Caught only by the writer's own count of keys written again (``rewrites`` in its
stats): "written again by new".

Run in storage's place: ``python -m tests.mutants.m21_retry_after_success``.
"""

from __future__ import annotations

from pipeline.common.batch_writer import BatchWriter
from pipeline.storage.__main__ import main

_write = BatchWriter._write


async def write_and_confirm(self: BatchWriter,
                            rows: list[tuple[int, bytes]]) -> tuple[list[str], int]:
    await _write(self, rows)
    return await _write(self, rows)  # BUG: "confirming" a write by writing it again


BatchWriter._write = write_and_confirm  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
