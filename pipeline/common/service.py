"""The kit every pipeline service is built on: the app, with health, metrics and bad input.

`make_app`: FastAPI app with `GET /health` (200, or 503 with the reason: a real status code,
FAILURE_MODES.md #10), `GET /metrics` from a registry of its own (no process-global registry,
so two apps in one test process never collide), and one policy for bad input
(`pipeline.common.bad_input`): oversized, non-UTF-8, non-JSON or invalid bodies get a 4xx with
a message a human can act on, and count in `cutover_bad_requests_total{reason}`.

The rest of the kit: `pipeline.common.logs` (JSON lines, secrets redacted by
`pipeline.common.redaction`) and `pipeline.common.serving` (uvicorn, graceful SIGTERM).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel, Field, model_validator

from pipeline.common.aio import within
from pipeline.common.bad_input import BodyGuard, install_error_handlers
from pipeline.common.openapi import HEALTH_BODY

__all__ = [
    "HealthReport",
    "ServiceKit",
    "kit_of",
    "make_app",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


# -- health --------------------------------------------------------------------------------------


class HealthReport(BaseModel):
    healthy: bool
    reason: str | None = None  # required when unhealthy: a 503 must say why
    details: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _reason_when_unhealthy(self) -> HealthReport:
        if not self.healthy and not self.reason:
            raise ValueError("an unhealthy report needs a reason")
        return self


HealthCheck = Callable[[], Awaitable[HealthReport]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class ServiceKit:
    """What make_app hangs on `app.state.kit`: services register their own metrics here."""

    name: str
    registry: CollectorRegistry
    bad_requests: Counter
    max_body_bytes: int

    def reject(self, status: int, reason: str, message: str, **extra: Any) -> JSONResponse:
        self.bad_requests.labels(reason=reason).inc()
        return JSONResponse({"error": reason, "detail": message, **extra}, status_code=status)


def kit_of(app: FastAPI) -> ServiceKit:
    kit: ServiceKit = app.state.kit
    return kit


# -- the app -------------------------------------------------------------------------------------


def make_app(
    name: str,
    *,
    health: HealthCheck,
    lifespan: Lifespan | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    health_timeout: float = 2.0,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """A FastAPI app with /health, /metrics and the bad-input policy; add routes to it."""
    registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
    kit = ServiceKit(
        name=name,
        registry=registry,
        bad_requests=Counter(
            "cutover_bad_requests",  # exposed as cutover_bad_requests_total, like every metric
            "Requests refused because their input was unusable",
            ["reason"],
            registry=registry,
        ),
        max_body_bytes=max_body_bytes,
    )
    app = FastAPI(title=name, lifespan=lifespan)
    app.state.kit = kit
    app.add_middleware(BodyGuard, kit=kit)
    install_error_handlers(app, kit)

    @app.get("/health", responses={
        200: {"description": "Healthy", "content": {"application/json": {"schema": HEALTH_BODY}}},
        503: {"description": "Not healthy; the reason says why",
              "content": {"application/json": {"schema": HEALTH_BODY}}},
    })
    async def get_health() -> JSONResponse:
        try:
            report = await within(health(), timeout=health_timeout)
        except TimeoutError:
            report = HealthReport(
                healthy=False, reason=f"health check did not answer within {health_timeout}s"
            )
        except Exception as exc:  # noqa: BLE001 - a crashing check means "not healthy", said so
            log.exception("health check raised")
            report = HealthReport(healthy=False, reason=f"health check failed: {exc!r}")
        body = {"service": name, "status": "ok" if report.healthy else "unhealthy",
                **report.model_dump(mode="json")}
        return JSONResponse(body, status_code=200 if report.healthy else 503)

    @app.get("/metrics", response_class=PlainTextResponse, responses={
        200: {"description": "Prometheus text exposition format",
              "content": {"text/plain": {"schema": {"type": "string"}}}},
    })
    async def get_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
