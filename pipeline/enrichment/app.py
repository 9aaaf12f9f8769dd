"""build_app(settings) -> the enrichment-pipeline FastAPI app; dependencies live in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from pipeline.common.openapi import EVENT_BATCH, EVENT_BATCH_ANSWER, json_body, responses
from pipeline.common.service import HealthReport, kit_of, make_app

from .core import SERVICE_NAME, EnrichmentService, OutboxUnavailable
from .metrics import EnrichmentMetrics, LiveCollector
from .settings import EnrichmentSettings

__all__ = ["build_app"]


def build_app(settings: EnrichmentSettings) -> FastAPI:
    async def health() -> HealthReport:
        return await service.health()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = kit_of(app).registry
        await service.start()
        collector = LiveCollector(service.live_figures)
        registry.register(collector)
        try:
            yield
        finally:
            registry.unregister(collector)
            await service.stop()

    app = make_app(SERVICE_NAME, health=health, lifespan=lifespan)
    service = EnrichmentService(settings, EnrichmentMetrics(kit_of(app).registry))
    app.state.enrichment = service  # for in-process tests; the service keeps no global state

    @app.post("/api/v1/events", openapi_extra=json_body(EVENT_BATCH),
              responses=responses(EVENT_BATCH_ANSWER, 400, 413, 422, 503))
    async def post_events(request: Request) -> JSONResponse:
        """A batch from ingestion: 200 once the accepted events are durable; bad events are
        listed in "rejected" one by one, never failing the rest of the batch."""
        try:
            answer = await service.ingest(await request.body())
        except OutboxUnavailable as exc:
            # 503: nothing of this batch was accepted, the sender keeps it and retries.
            return JSONResponse(
                {"error": "outbox_unavailable", "detail": str(exc)}, status_code=503
            )
        return JSONResponse(answer)

    @app.get("/api/v1/stats")
    async def get_stats() -> dict[str, Any]:
        return service.stats()

    return app
