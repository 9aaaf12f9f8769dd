"""HTTP face of the legacy monolith (port 8000): ``GET /health``, ``/metrics``, ``/api/v1/stats``.

Its input is the Home Assistant websocket, its output InfluxDB; on SIGTERM the lifespan stops
the websocket first and then writes the in-memory buffer.
"""

from __future__ import annotations

from fastapi import FastAPI

from pipeline.common.runtime_app import make_runtime_app
from pipeline.legacy.metrics import LegacyMetrics
from pipeline.legacy.runtime import SERVICE, Legacy
from pipeline.legacy.settings import LegacySettings

__all__ = ["SERVICE", "build_app"]


def build_app(settings: LegacySettings) -> FastAPI:
    return make_runtime_app(SERVICE, metrics=LegacyMetrics,
                            open_runtime=lambda m: Legacy.open(settings, m.latency))
