"""HTTP face of the data-storage service (port 8004).

- ``POST /api/v1/events``: ``{"events": [...]}`` -> 200 ``{"accepted", "rejected", "duplicates"}``
  once the accepted events are in the durable queue; 503 when they could not be made durable.
- ``GET /api/v1/events``: ``{"events": [...]}``, newest first by default; filters ``entity_id``,
  ``since`` (inclusive), ``until`` (exclusive), ``limit``, ``order``, ``db=production|shadow``.
- ``GET /api/v1/events/count``: ``{"count": n}`` for the same filters.
- ``GET /api/v1/stats``, ``/health``, ``/metrics``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from pipeline.common.influx import InfluxError
from pipeline.common.openapi import EVENT_BATCH, EVENT_BATCH_ANSWER, json_body, responses
from pipeline.common.service import HealthReport, kit_of, make_app
from pipeline.storage.intake import parse_batch_body
from pipeline.storage.metrics import StorageMetrics
from pipeline.storage.query import QUERY_PARAMETERS, parse_event_query
from pipeline.storage.settings import StorageSettings
from pipeline.storage.store import EventStore, StoreUnavailable

__all__ = ["build_app"]


def build_app(settings: StorageSettings) -> FastAPI:
    holder: dict[str, EventStore] = {}  # this app's store, set by its lifespan (no global state)

    async def health() -> HealthReport:
        store = holder.get("store")
        if store is None:
            return HealthReport(healthy=False, reason="not serving (starting or shutting down)")
        return store.monitor.report()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        store = await EventStore.open(settings, metrics)
        holder["store"] = store
        try:
            yield
        finally:
            # uvicorn has stopped taking requests and finished the in-flight ones by now.
            holder.pop("store", None)
            await store.aclose()

    app = make_app(
        EventStore.SERVICE, health=health, lifespan=lifespan, max_body_bytes=settings.max_body_bytes
    )
    metrics = StorageMetrics(kit_of(app).registry)

    def store_of() -> EventStore:
        store = holder.get("store")
        if store is None:
            raise StoreUnavailable("storage is not serving (starting or shutting down)")
        return store

    @app.post("/api/v1/events", openapi_extra=json_body(EVENT_BATCH),
              responses=responses(EVENT_BATCH_ANSWER, 400, 413, 422, 503))
    async def post_events(request: Request) -> Response:
        items = parse_batch_body(await request.body())
        try:
            result = await store_of().accept(items)
        except StoreUnavailable as exc:
            return _json({"error": "unavailable", "detail": str(exc)}, 503)
        return _json(
            {
                "accepted": result.accepted,
                "rejected": [r.as_json() for r in result.rejected],
                "duplicates": result.duplicates,
            }
        )

    @app.get("/api/v1/events", openapi_extra={"parameters": QUERY_PARAMETERS},
             responses=responses(_EVENTS_ANSWER, 400, 503))
    async def get_events(request: Request) -> Response:
        query = parse_event_query(request.query_params.multi_items())
        try:
            events = await store_of().events(query)
        except (InfluxError, StoreUnavailable) as exc:
            return _query_failed(exc)
        return _json({"events": events})

    @app.get("/api/v1/events/count",
             openapi_extra={"parameters": QUERY_PARAMETERS[:4]},  # no limit, no order
             responses=responses(_COUNT_ANSWER, 400, 503))
    async def count_events(request: Request) -> Response:
        query = parse_event_query(request.query_params.multi_items(), counting=True)
        try:
            count = await store_of().count(query)
        except (InfluxError, StoreUnavailable) as exc:
            return _query_failed(exc)
        return _json({"count": count})

    @app.get("/api/v1/stats", responses=responses(None, 503))
    async def stats() -> Response:
        try:
            return _json(store_of().stats())
        except StoreUnavailable as exc:
            return _json({"error": "unavailable", "detail": str(exc)}, 503)

    return app


_EVENTS_ANSWER = {"type": "object", "required": ["events"],
                  "properties": {"events": {"type": "array", "items": {"type": "object"}}}}
_COUNT_ANSWER = {"type": "object", "required": ["count"],
                 "properties": {"count": {"type": "integer", "minimum": 0}}}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _query_failed(exc: Exception) -> Response:
    return _json({"error": "influxdb_unavailable", "detail": f"query failed: {exc}"}, 503)
