"""FAILURE_MODES.md #10, health always 200: /health says OK while nothing is written.

websocket-ingestion's /health is a constant 200 ("the process is up"): it no longer looks at
the Home Assistant connection or at the outbox's progress. It has something to hide, because
the client takes Home Assistant's clean close on a restart (code 1000) for "we are done here"
and never reconnects: from then on nothing reaches the new pipeline, and every status code
still says OK. Caught by availability, which the harness measures from progress (events due
but nothing stored), not from status codes (``survive_ha_restart``, ``availability >= 90%``).

Run in ingestion's place: ``python -m tests.mutants.m10_health_always_ok``.
"""

from __future__ import annotations

import pipeline.ingestion.runtime as runtime
from pipeline.common.ha_client import HomeAssistantClient
from pipeline.common.service import HealthReport
from pipeline.ingestion.__main__ import main


class GivesUpOnCleanClose(HomeAssistantClient):
    async def _connection(self) -> None:
        await super()._connection()  # returns when Home Assistant closed the connection cleanly
        self._stopping.set()  # the trigger: a clean close is taken for the end of the stream


def health_always_ok(self: runtime.Ingestion) -> HealthReport:
    return HealthReport(healthy=True)  # BUG: the defect under test


runtime.HomeAssistantClient = GivesUpOnCleanClose  # type: ignore[misc]
runtime.Ingestion.health = health_always_ok  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
