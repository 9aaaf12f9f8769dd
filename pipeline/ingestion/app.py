"""HTTP face of websocket-ingestion (port 8001): ``GET /health``, ``/metrics``, ``/api/v1/stats``.

The service takes no HTTP input: its input is the Home Assistant websocket. The lifespan opens
the runtime (outbox, forwarder, HA client) and, on SIGTERM, closes it in the order that loses
nothing it holds: stop reading HA, commit what was read, forward, leave the rest durable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

from pipeline.common.service import HealthReport, kit_of, make_app
from pipeline.ingestion.metrics import IngestionMetrics
from pipeline.ingestion.runtime import SERVICE, Ingestion
from pipeline.ingestion.settings import IngestionSettings

__all__ = ["SERVICE", "build_app"]


def build_app(settings: IngestionSettings) -> FastAPI:
    holder: dict[str, Ingestion] = {}  # this app's runtime, set by its lifespan (no global state)

    async def health() -> HealthReport:
        runtime = holder.get("runtime")
        if runtime is None:
            return HealthReport(healthy=False, reason="not running (starting or shutting down)")
        return runtime.health()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Ingestion.open(settings, metrics.durable_delay)
        holder["runtime"] = runtime
        try:
            yield
        finally:
            await runtime.aclose()
            holder.pop("runtime", None)

    app = make_app(SERVICE, health=health, lifespan=lifespan)
    metrics = IngestionMetrics(kit_of(app).registry, lambda: holder.get("runtime"))

    @app.get("/api/v1/stats")
    async def stats() -> Response:
        runtime = holder.get("runtime")
        if runtime is None:
            return _json({"error": "unavailable", "detail": "not running"}, 503)
        return _json(runtime.stats())

    return app


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
