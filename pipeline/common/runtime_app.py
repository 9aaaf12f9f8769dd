"""The HTTP face of a service whose real input is not HTTP (the Home Assistant clients):
``/health``, ``/metrics`` and ``/api/v1/stats`` around a runtime object opened in the lifespan.

Legacy and websocket-ingestion both take their input from the websocket; this is their one
shared shell, so they differ only in the runtime and metrics they bring.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar

import orjson
from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CollectorRegistry

from pipeline.common.openapi import responses
from pipeline.common.service import HealthReport, kit_of, make_app


class ServiceRuntime(Protocol):
    def health(self) -> HealthReport: ...

    def stats(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


R = TypeVar("R", bound=ServiceRuntime)
M = TypeVar("M")


class _Holder(Generic[R]):
    """This app's runtime, set by its lifespan (no global state)."""

    def __init__(self) -> None:
        self.runtime: R | None = None


def make_runtime_app(
    name: str,
    *,
    open_runtime: Callable[[M], Awaitable[R]],
    metrics: Callable[[CollectorRegistry, Callable[[], R | None]], M],
) -> FastAPI:
    """``open_runtime(metrics)`` is awaited at start-up and ``aclose()``d on shutdown (SIGTERM),
    which is where the runtime flushes what it holds."""
    holder: _Holder[R] = _Holder()

    async def health() -> HealthReport:
        if holder.runtime is None:
            return HealthReport(healthy=False, reason="not running (starting or shutting down)")
        return holder.runtime.health()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        holder.runtime = await open_runtime(built)
        try:
            yield
        finally:
            runtime, holder.runtime = holder.runtime, None
            await runtime.aclose()

    app = make_app(name, health=health, lifespan=lifespan)
    built = metrics(kit_of(app).registry, lambda: holder.runtime)

    @app.get("/api/v1/stats", responses=responses(None, 503))
    async def stats() -> Response:
        if holder.runtime is None:
            return _json({"error": "unavailable", "detail": "not running"}, 503)
        return _json(holder.runtime.stats())

    return app


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
