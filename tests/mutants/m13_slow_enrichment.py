"""FAILURE_MODES.md #13, slow enrichment stalls ingestion: a slow weather API, awaited inline
per event, backs up the websocket.

The defect is a chain of inline awaits from the websocket down to the weather API, so this
module stands in for two services (it looks at its environment to know which it is):

- enrichment-pipeline fetches the weather for every event it receives, awaited before it
  answers (instead of reading the cache a background task keeps fresh);
- websocket-ingestion reads its next frame from Home Assistant only once the events of the
  previous one have been accepted downstream (instead of handing them to its outbox and
  reading on).

Each event now holds the websocket reader for a weather round trip (2 s once the API turns
slow): events reach InfluxDB seconds late and pile up in front of the connection. Caught
by ``load_with_slow_weather`` on both counts FAILURE_MODES.md names: the latency SLO
(``p(95) < 500ms``) and, at 1,000 events/s (the ~4 MB of socket buffers in between fill in
seconds), Home Assistant dropping the client for back-pressure (1,024 messages queued for
10 s, or 4,096), which the ledger records and the verdict names with what it dropped. At
50 events/s (``survive_slow_weather``) the buffers absorb over a minute of backlog and only
the latency SLO shows it.

Run in both places: ``service_modules={"ingestion": ..., "enrichment": ...}``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from websockets.exceptions import ConnectionClosedOK


class WaitingSocket:
    """The websocket, read one frame at a time, each only once ``ready()`` says so."""

    def __init__(self, ws: Any, ready: Callable[[], Awaitable[None]]) -> None:
        self.ws = ws
        self.ready = ready

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ws, name)

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            await self.ready()
            try:
                yield await self.ws.recv()
            except ConnectionClosedOK:
                return


def mutate_ingestion() -> Callable[[], None]:
    import pipeline.ingestion.runtime as runtime
    from pipeline.common.ha_client import HomeAssistantClient
    from pipeline.ingestion.__main__ import main

    class InlineClient(HomeAssistantClient):
        async def _read(self, conn: Any) -> None:
            conn.ws = WaitingSocket(conn.ws, self._downstream_done)
            await super()._read(conn)

        async def _downstream_done(self) -> None:
            intake = self._on_event.__self__  # type: ignore[attr-defined]
            while intake.pending or intake.queue.depth:  # BUG: the reader waits for enrichment
                await asyncio.sleep(0.002)

    runtime.HomeAssistantClient = InlineClient  # type: ignore[misc]
    return main


def mutate_enrichment() -> Callable[[], None]:
    import orjson

    from pipeline.enrichment.__main__ import main
    from pipeline.enrichment.core import EnrichmentService

    ingest = EnrichmentService.ingest

    async def ingest_fetching_weather(self: EnrichmentService, body: bytes) -> dict[str, Any]:
        if self.refresher is not None:
            try:
                n = len(orjson.loads(body)["events"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                n = 0
            for _ in range(n):
                await self.refresher.fetch_once()  # BUG: fresh weather per event, awaited inline
        return await ingest(self, body)

    EnrichmentService.ingest = ingest_fetching_weather  # type: ignore[method-assign]
    return main


if __name__ == "__main__":
    # enrichment is the one service told where storage is; ingestion is told where enrichment is
    (mutate_enrichment if "CUTOVER_STORAGE_URL" in os.environ else mutate_ingestion)()()
