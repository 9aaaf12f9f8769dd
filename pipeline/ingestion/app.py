"""HTTP face of websocket-ingestion (port 8001): ``GET /health``, ``/metrics``, ``/api/v1/stats``.

The service takes no HTTP input: its input is the Home Assistant websocket. The lifespan opens
the runtime (outbox, forwarder, HA client) and, on SIGTERM, closes it in the order that loses
nothing it holds: stop reading HA, commit what was read, forward, leave the rest durable.
"""

from __future__ import annotations

from fastapi import FastAPI

from pipeline.common.runtime_app import make_runtime_app
from pipeline.ingestion.metrics import IngestionMetrics
from pipeline.ingestion.runtime import SERVICE, Ingestion
from pipeline.ingestion.settings import IngestionSettings

__all__ = ["SERVICE", "build_app"]


def build_app(settings: IngestionSettings) -> FastAPI:
    return make_runtime_app(SERVICE, metrics=IngestionMetrics,
                            open_runtime=lambda m: Ingestion.open(settings, m.durable_delay))
