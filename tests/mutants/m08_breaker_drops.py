"""FAILURE_MODES.md #8, the circuit breaker drops while open.

enrichment-pipeline's forwarder to storage treats an open breaker as "storage does not want
these": the batch it could not send because the breaker refused it is acknowledged (removed
from the durable outbox) instead of held until the breaker lets a probe through. Everything
that arrives while storage is down and the breaker open is discarded. Caught by the loss check
during a downstream outage (``survive_downstream_crash``: storage is SIGKILLed, later
enrichment itself).

Run in enrichment's place: ``python -m tests.mutants.m08_breaker_drops``.
"""

from __future__ import annotations

import logging

from pipeline.common.forwarder import Forwarder, StepOutcome
from pipeline.enrichment.__main__ import main

log = logging.getLogger("tests.mutants.m08")
_step = Forwarder.step


async def step_dropping_while_open(self: Forwarder) -> StepOutcome:
    outcome = await _step(self)
    if outcome == "breaker":
        # BUG: the batch the breaker refused is dropped rather than kept in the outbox.
        items = await self.outbox.peek(self.batch_size)
        if items:
            await self.outbox.ack(items[-1][0])
            log.warning("breaker open; batch discarded", extra={"events": len(items)})
    return outcome


Forwarder.step = step_dropping_while_open  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
