"""admin-api's own routes: migration control plane, recent events, stats."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from pipeline.admin.auth import AuthFailure, check_bearer
from pipeline.admin.bodies import ChangeRequest, RollbackRequest, parse_body
from pipeline.admin.control import BoundaryTooEarly, ControlPlane
from pipeline.admin.health import HealthMonitor
from pipeline.admin.metrics import AdminMetrics
from pipeline.admin.recent import UpstreamError, fetch_recent_events
from pipeline.admin.settings import AdminSettings
from pipeline.admin.state import ChangeKind
from pipeline.common.openapi import json_body, responses
from pipeline.common.service import kit_of

__all__ = ["AdminDeps", "deps_of", "router"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdminDeps:
    """What the lifespan wires and the routes use; hung on app.state.admin."""

    settings: AdminSettings
    control: ControlPlane
    monitor: HealthMonitor
    client: httpx.AsyncClient
    metrics: AdminMetrics


def deps_of(app: FastAPI) -> AdminDeps:
    deps: AdminDeps = app.state.admin
    return deps


router = APIRouter()


# The mutations read their body by hand (auth first): declared here for the OpenAPI spec.
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


@router.get("/api/v1/migration", responses=responses({"type": "object"}))
async def get_migration(request: Request) -> JSONResponse:
    # No auth: every service's RoutingFollower polls this.
    return JSONResponse(deps_of(request.app).control.view())


@router.put("/api/v1/migration",
            openapi_extra={**json_body(ChangeRequest.model_json_schema()), "security": _BEARER},
            responses=responses({"type": "object"}, 400, 401, 403, 409, 413, 422, 503))
async def put_migration(request: Request) -> JSONResponse:
    denied = _authorize(request)
    if denied is not None:
        return denied
    body = parse_body(ChangeRequest, await request.body())
    return await _apply(request, "change", body.reason, body.actor, new_percent=body.new_percent,
                        shadow=body.shadow, effective_from_ns=body.effective_from_ns)


@router.post("/api/v1/migration/rollback",
             openapi_extra={**json_body(RollbackRequest.model_json_schema()),
                            "security": _BEARER},
             responses=responses({"type": "object"}, 400, 401, 403, 409, 413, 422, 503))
async def post_rollback(request: Request) -> JSONResponse:
    denied = _authorize(request)
    if denied is not None:
        return denied
    body = parse_body(RollbackRequest, await request.body())
    return await _apply(request, "rollback", body.reason, body.actor, new_percent=0,
                        shadow=body.shadow)


@router.get("/api/v1/events/recent", responses=responses({"type": "object"}, 422, 502))
async def get_recent_events(
    request: Request, limit: int = Query(50, ge=1, le=1000)
) -> JSONResponse:
    deps = deps_of(request.app)
    source = deps.settings.recent_events_source
    try:
        events = await fetch_recent_events(deps.client, source, limit,
                                           timeout=deps.settings.health_timeout_s)
    except UpstreamError as exc:
        deps.metrics.upstream_errors.labels(target="storage").inc()
        return JSONResponse({"error": "storage_unavailable", "detail": str(exc)},
                            status_code=502)
    return JSONResponse({"events": events, "count": len(events), "source": source})


@router.get("/api/v1/stats")
async def get_stats(request: Request) -> dict[str, Any]:
    control = deps_of(request.app).control
    return {
        "service": kit_of(request.app).name,
        "received": control.received,
        "processed": control.processed,
        "queue_depth": 0,
        "last_received_ns": control.last_received_ns,
        "last_processed_ns": control.last_processed_ns,
        "history_length": len(control.history),
        "pending_changes": len(control.pending()),
    }


# -- helpers ---------------------------------------------------------------------------------------


def _authorize(request: Request) -> JSONResponse | None:
    deps = deps_of(request.app)
    try:
        check_bearer(request.headers.get("authorization"), deps.settings.admin_token)
    except AuthFailure as exc:
        response = kit_of(request.app).reject(exc.status, exc.reason, exc.message)
        if exc.status == 401:
            response.headers["www-authenticate"] = 'Bearer realm="admin-api"'
        return response
    return None


async def _apply(
    request: Request,
    kind: ChangeKind,
    reason: str,
    actor: str,
    *,
    new_percent: int | None,
    shadow: bool | None,
    effective_from_ns: int | None = None,
) -> JSONResponse:
    deps = deps_of(request.app)
    try:
        record = await deps.control.change(
            kind=kind, reason=reason, actor=actor, new_percent=new_percent, shadow=shadow,
            effective_from_ns=effective_from_ns)
    except BoundaryTooEarly as exc:
        return kit_of(request.app).reject(409, "boundary_too_early", str(exc),
                                          earliest_allowed_ns=exc.earliest_ns)
    except OSError as exc:
        # Not on disk, so not announced: the caller may retry; nothing changed.
        return JSONResponse(
            {"error": "not_persisted",
             "detail": f"the change could not be persisted, nothing changed: {exc}"},
            status_code=503)
    deps.metrics.changes.labels(kind=kind).inc()
    return JSONResponse({"change": record.model_dump(mode="json"), **deps.control.view()})
