"""Issue 12: a storage that acknowledges a batch its full disk refused.

The batch writer's durable queue cannot commit (``database or disk is full``); instead of
answering 503 so that enrichment keeps the batch in its outbox and sends it again, this storage
logs the error and answers 200 as if the events were stored: "the disk will be freed soon, and
a 503 storm would only open enrichment's breaker". Enrichment acks and forgets the batch; the
events are nowhere. Invisible while the disk has room; caught by survive_disk_full's loss check
(storage's queue has to grow while InfluxDB is down and its disk is full).

Run in storage's place: ``python -m tests.mutants.m17_full_disk_acks``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pipeline.storage.__main__ import main
from pipeline.storage.store import Accepted, EventStore, StoreUnavailable

log = logging.getLogger("tests.mutants.m17")
_accept = EventStore.accept


async def accept_anyway(self: EventStore, items: Sequence[Any]) -> Accepted:
    try:
        return await _accept(self, items)
    except StoreUnavailable as exc:
        # BUG: the events were not made durable, yet the sender hears they were.
        log.warning("queue full; acknowledging anyway", extra={"error": str(exc)})
        return Accepted(accepted=len(items), rejected=[], duplicates=0)


EventStore.accept = accept_anyway  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
