"""FAILURE_MODES.md #9, a rate limiter drops what is beyond its rate.

websocket-ingestion protects itself with a token bucket in front of its intake: 200 events/s,
bursts of 200. What the bucket refuses is discarded and counted, on the theory that "Home
Assistant never sends more than that". An integration reload does. Caught by the loss check
under the spike load profile (``scenarios/load_spike.yaml``: 500/s for a few seconds).

Run in ingestion's place: ``python -m tests.mutants.m09_rate_limiter_drops``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pipeline.ingestion.runtime as runtime
from pipeline.ingestion.__main__ import main
from pipeline.ingestion.intake import Intake

log = logging.getLogger("tests.mutants.m09")

RATE_PER_S = 200.0
BURST = 200.0


class RateLimitedIntake(Intake):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tokens = BURST
        self._refilled = time.monotonic()
        self.rate_limited = 0

    def on_event(self, event: Any, received_at_ns: int) -> None:
        now = time.monotonic()
        self._tokens = min(BURST, self._tokens + (now - self._refilled) * RATE_PER_S)
        self._refilled = now
        if self._tokens < 1.0:
            self.rate_limited += 1  # BUG: over the limit, the event is simply discarded
            if self.rate_limited % 100 == 1:
                log.warning("rate limit exceeded; events dropped",
                            extra={"dropped": self.rate_limited})
            return
        self._tokens -= 1.0
        super().on_event(event, received_at_ns)


runtime.Intake = RateLimitedIntake  # type: ignore[misc]

if __name__ == "__main__":
    main()
