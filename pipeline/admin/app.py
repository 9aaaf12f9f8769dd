"""Wiring of admin-api: build_app(settings) -> FastAPI."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from pipeline.admin.api import AdminDeps, deps_of, router
from pipeline.admin.control import ControlPlane
from pipeline.admin.health import HealthMonitor
from pipeline.admin.metrics import AdminMetrics
from pipeline.admin.settings import AdminSettings
from pipeline.admin.state import StateFileError, StateStore
from pipeline.common.service import HealthReport, kit_of, make_app

__all__ = ["build_app", "overall_health"]

log = logging.getLogger(__name__)

NAME = "admin"


def overall_health(deps: AdminDeps) -> HealthReport:
    """Every watched service (as of its last poll) and admin-api's own control plane."""
    monitor = deps.monitor
    services = {name: monitor.describe(name) for name in monitor.services}
    unhealthy = {name: d["reason"] for name, d in services.items() if not d["healthy"]}
    cp_ok, cp_reason, cp_details = deps.control.health()
    reasons = [f"{name}: {reason}" for name, reason in unhealthy.items()]
    if not cp_ok:
        reasons.append(f"control plane: {cp_reason}")
    return HealthReport(
        healthy=not reasons,
        reason=("unhealthy: " + "; ".join(reasons)) if reasons else None,
        details={"services": services, "unhealthy": unhealthy,
                 "control_plane": {"healthy": cp_ok, "reason": cp_reason, **cp_details}},
    )


def build_app(settings: AdminSettings) -> FastAPI:
    # `app` and `metrics` are bound below; the closures run only once the app is serving.
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        control = ControlPlane(
            StateStore(settings.state_path),
            lead_ns=settings.migration_lead_ms * 1_000_000,
            lease_ns=settings.migration_lease_ms * 1_000_000,
        )
        try:
            await control.open()
        except (StateFileError, OSError) as exc:
            log.critical("cannot open the migration state; refusing to start",
                         extra={"error": str(exc), "state_file": str(settings.state_path)})
            raise
        async with httpx.AsyncClient(
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        ) as client:
            monitor = HealthMonitor(
                settings.services, client, interval=settings.health_poll_s,
                timeout=settings.health_timeout_s, window=settings.progress_window_s,
                on_poll=metrics.on_poll,
            )
            metrics.bind(control, monitor)
            app.state.admin = AdminDeps(settings=settings, control=control, monitor=monitor,
                                        client=client, metrics=metrics)
            control.start()
            monitor.start()
            log.info("admin-api started", extra={"settings": settings.safe_dump()})
            try:
                yield
            finally:
                await monitor.stop()
                await control.stop()

    async def health() -> HealthReport:
        return overall_health(deps_of(app))

    app = make_app(NAME, health=health, lifespan=lifespan)
    metrics = AdminMetrics(kit_of(app).registry)
    app.include_router(router)
    _declare_bearer(app)
    return app


def _declare_bearer(app: FastAPI) -> None:
    """The spec names the bearer scheme the mutations require (they check it by hand)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            spec.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http", "scheme": "bearer",
                "description": "CUTOVER_ADMIN_TOKEN of admin-api"}
            app.openapi_schema = spec
        return app.openapi_schema

    # Replacing app.openapi is FastAPI's documented way to extend the generated schema.
    app.openapi = openapi  # type: ignore[method-assign]
