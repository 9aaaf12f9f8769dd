"""HTTP face of the legacy monolith (port 8000): ``GET /health``, ``/metrics``, ``/api/v1/stats``.

Its input is the Home Assistant websocket, its output InfluxDB; on SIGTERM the lifespan stops
the websocket first and then writes the in-memory buffer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

from pipeline.common.service import HealthReport, kit_of, make_app
from pipeline.legacy.metrics import LegacyMetrics
from pipeline.legacy.runtime import SERVICE, Legacy
from pipeline.legacy.settings import LegacySettings

__all__ = ["SERVICE", "build_app"]


def build_app(settings: LegacySettings) -> FastAPI:
    holder: dict[str, Legacy] = {}  # this app's runtime, set by its lifespan (no global state)

    async def health() -> HealthReport:
        runtime = holder.get("runtime")
        if runtime is None:
            return HealthReport(healthy=False, reason="not running (starting or shutting down)")
        return runtime.health()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Legacy.open(settings, metrics.latency)
        holder["runtime"] = runtime
        try:
            yield
        finally:
            await runtime.aclose()
            holder.pop("runtime", None)

    app = make_app(SERVICE, health=health, lifespan=lifespan)
    metrics = LegacyMetrics(kit_of(app).registry, lambda: holder.get("runtime"))

    @app.get("/api/v1/stats")
    async def stats() -> Response:
        runtime = holder.get("runtime")
        if runtime is None:
            return _json({"error": "unavailable", "detail": "not running"}, 503)
        return _json(runtime.stats())

    return app


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
