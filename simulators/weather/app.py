"""The HTTP API alone (no listener): ``GET /data/2.5/weather`` as OpenWeatherMap answers it,
with the faults applied, plus the harness's ``/_faults``, ``/_stats`` and ``/health``."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from .config import WeatherConfig
from .faults import FaultSpec, WeatherFaults
from .model import WeatherModel
from .owm import RATE_LIMITED_BODY, UNAUTHORIZED_BODY, to_owm

__all__ = ["AppState", "Outcome", "build_weather_app"]

Outcome = Literal["ok", "unauthorized", "bad_request", "error", "rate_limited"]


@dataclass(slots=True)
class AppState:
    """What the app's handlers share (``app.state.weather``)."""

    config: WeatherConfig
    model: WeatherModel
    faults: WeatherFaults
    clock: Callable[[], float]
    counts: Counter[str] = field(default_factory=Counter)
    # Set when the server goes down or stops: a request waiting out a "slow" delay ends at
    # once (its connection is gone anyway) instead of outliving the server.
    interrupt: asyncio.Event = field(default_factory=asyncio.Event)


def build_weather_app(
    config: WeatherConfig,
    faults: WeatherFaults,
    *,
    model: WeatherModel | None = None,
    clock: Callable[[], float] = time.time,
    counts: Counter[str] | None = None,
) -> FastAPI:
    """The ASGI app alone (no listener): for a server of your own, or an in-memory transport."""
    state = AppState(
        config,
        model or WeatherModel(config.seed),
        faults,
        clock,
        counts if counts is not None else Counter(),
    )
    app = FastAPI(title="fake OpenWeatherMap", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.weather = state

    def answer(outcome: Outcome, status: int, body: dict[str, Any], **headers: str) -> JSONResponse:
        state.counts[outcome] += 1
        return JSONResponse(body, status_code=status, headers=headers or None)

    @app.get("/data/2.5/weather")
    async def current_weather(request: Request) -> JSONResponse:
        q = request.query_params
        delay = state.faults.spec.delay_s
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.interrupt.wait(), timeout=delay)
        status = state.faults.draw_error()
        if status == 429:
            retry_after = str(state.faults.spec.retry_after_s)
            return answer("rate_limited", 429, RATE_LIMITED_BODY, **{"Retry-After": retry_after})
        if status is not None:
            return answer("error", status, {"cod": str(status), "message": "Internal error"})
        # Constant-time comparison: it costs nothing and a fake should not teach bad habits.
        if not hmac.compare_digest(q.get("appid", "").encode(), config.api_key.encode()):
            return answer("unauthorized", 401, UNAUTHORIZED_BODY)
        if "lat" not in q or "lon" not in q:
            return answer("bad_request", 400, {"cod": "400", "message": "Nothing to geocode"})
        lat, lon = _coordinate(q["lat"], 90), _coordinate(q["lon"], 180)
        if lat is None:
            return answer("bad_request", 400, {"cod": "400", "message": "wrong latitude"})
        if lon is None:
            return answer("bad_request", 400, {"cod": "400", "message": "wrong longitude"})
        obs = state.model.observe(lat, lon, state.clock())
        body = to_owm(
            obs,
            q.get("units", "standard"),
            city_id=config.city_id,
            name=config.city_name,
            country=config.country,
        )
        return answer("ok", 200, body)

    @app.get("/_faults")
    async def get_faults() -> dict[str, Any]:
        return state.faults.spec.model_dump()

    @app.put("/_faults")
    async def put_faults(spec: FaultSpec) -> JSONResponse:
        if spec.down and spec.down_s is None:
            return JSONResponse(
                {
                    "detail": "down over HTTP needs down_s: a server that stopped listening "
                    "cannot be told to come back"
                },
                status_code=422,
            )

        async def apply_later() -> None:
            # After the answer is sent, and outside this request's task: "down" cuts every open
            # connection, this one included.
            asyncio.get_running_loop().call_soon(state.faults.apply, spec)

        return JSONResponse(spec.model_dump(), background=BackgroundTask(apply_later))

    @app.get("/health")
    async def get_health() -> dict[str, Any]:
        # The sim itself is up even while it injects faults: the harness waits on this.
        return {"status": "ok"}

    @app.get("/_stats")
    async def get_stats() -> dict[str, Any]:
        return {"requests": dict(state.counts), "total": sum(state.counts.values())}

    return app


def _coordinate(text: str, limit: float) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and -limit <= value <= limit else None
