"""A mutant data-storage: a batch InfluxDB fails to take is dropped, not kept for a retry.

FAILURE_MODES.md #7 in spirit: the write path treats a failed write as done, so every batch
written while InfluxDB is unreachable (an outage, a cut storage-influxdb hop) is lost, while
the service stays healthy and its queue empty. Run in storage's place with
``service_modules={"storage": "tests.chaos.broken_storage"}`` (or the hidden
``cutover chaos --service-module storage=tests.chaos.broken_storage``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipeline.common.influx import InfluxWriter, WriteError
from pipeline.storage import store
from pipeline.storage.__main__ import main

log = logging.getLogger("pipeline.storage.mutant")
_make_writer = store.make_writer


class DroppingWriter:
    """Passes writes through; a retryable failure is swallowed, so the batch is acked."""

    def __init__(self, inner: InfluxWriter) -> None:
        self.inner = inner

    async def write(self, lines: Sequence[str]) -> None:
        try:
            await self.inner.write(lines)
        except WriteError as exc:
            if not exc.retryable:
                raise
            log.warning("write failed; dropping the batch (the mutant's defect)",
                        extra={"lines": len(lines), "error": exc.message})

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()


def _dropping_writer(settings, database, counts):  # type: ignore[no-untyped-def]
    return DroppingWriter(_make_writer(settings, database, counts))


store.make_writer = _dropping_writer  # type: ignore[assignment]

if __name__ == "__main__":
    main()
