"""A fake OpenWeatherMap "current weather" API, with faults the harness switches on and off.

``GET /data/2.5/weather?lat=..&lon=..&appid=..&units=metric`` answers the JSON OpenWeatherMap
answers (coord, weather[], main{}, wind{}, clouds{}, dt, sys{}, timezone, id, name, cod 200).
The values are a pure function of (seed, location, time): a seasonal and daily cycle plus slow
seeded waves, so they drift plausibly (a few tenths of a degree per ten minutes) and two runs
with the same seed and clock answer the same thing.

Faults, for proving that a slow or broken weather API never delays or drops an event
(FAILURE_MODES.md #13), are held by `WeatherFaults`:

- ``slow(delay_s)``: every weather request waits ``delay_s`` before it is answered;
- ``errors(status=500, fraction=1.0)``: that fraction of requests answers ``status``;
- ``rate_limit(retry_after_s=60)``: every request answers 429 with ``Retry-After``;
- ``down(seconds=None)``: stop listening (new connections are refused) and cut the open ones;
- ``clear()``: all of the above off, listening again.

A harness in the same process holds the object (``server.faults``); one in another process
sends ``PUT /_faults`` with the whole fault set as JSON (``{}`` clears; ``down_s`` must be a
duration there, since a server that stopped listening can no longer be told to come back).
``GET /_faults`` and ``GET /_stats`` (requests per outcome) are never subject to faults.

Standalone: ``python -m simulators.weather --port 8090 --api-key KEY --seed 1``.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import math
import random
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.background import BackgroundTask

__all__ = [
    "FaultSpec",
    "Observation",
    "WeatherConfig",
    "WeatherFaults",
    "WeatherModel",
    "WeatherServer",
    "build_weather_app",
    "main",
]

Outcome = Literal["ok", "unauthorized", "bad_request", "error", "rate_limited"]

# OpenWeatherMap's own error bodies, so a client's error handling is exercised as in production.
UNAUTHORIZED_BODY = {
    "cod": 401,
    "message": "Invalid API key. Please see https://openweathermap.org/faq#error401 for more info.",
}
RATE_LIMITED_BODY = {
    "cod": 429,
    "message": "Your account is temporary blocked due to exceeding of requests limitation of your "
    "subscription type. Please choose the proper subscription https://openweathermap.org/price",
}

_DAY_S = 86_400.0
_YEAR_S = 365.2422 * _DAY_S


# --------------------------------------------------------------------------- the weather itself


@dataclass(frozen=True, slots=True)
class Observation:
    """One current-weather reading, in SI-ish units (°C, hPa, %, m/s); `to_owm` converts."""

    dt: int
    lat: float
    lon: float
    temp_c: float
    feels_like_c: float
    temp_min_c: float
    temp_max_c: float
    pressure_hpa: int
    humidity_pct: int
    wind_speed_ms: float
    wind_deg: int
    wind_gust_ms: float
    clouds_pct: int
    visibility_m: int
    condition_id: int
    condition: str  # OpenWeatherMap's "main": Clear, Clouds, Rain, Snow, Mist, Thunderstorm
    description: str
    icon: str
    sunrise: int
    sunset: int
    timezone_s: int


class _Waves:
    """A smooth, seeded signal in [-1, 1]: the sum of a few sines of different periods."""

    def __init__(
        self, rng: random.Random, min_period_s: float, max_period_s: float, n: int = 3
    ) -> None:
        self._waves = [
            (2 * math.pi / rng.uniform(min_period_s, max_period_s), rng.uniform(0, 2 * math.pi))
            for _ in range(n)
        ]

    def __call__(self, t: float) -> float:
        return sum(math.sin(w * t + phase) for w, phase in self._waves) / len(self._waves)


class WeatherModel:
    """Weather as a pure function of (seed, lat, lon, t): reproducible, and smooth in t."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._by_place: dict[tuple[float, float], dict[str, _Waves]] = {}

    def _waves(self, lat: float, lon: float) -> dict[str, _Waves]:
        key = (round(lat, 2), round(lon, 2))
        waves = self._by_place.get(key)
        if waves is None:
            # A str seed is hashed with SHA-512 by random: the same in every process and run.
            rng = random.Random(f"{self.seed}:{key[0]:.2f}:{key[1]:.2f}")
            waves = {
                "temp": _Waves(rng, 6 * 3600, 4 * _DAY_S),
                "clouds": _Waves(rng, 3 * 3600, 2 * _DAY_S),
                "humidity": _Waves(rng, 4 * 3600, 2 * _DAY_S),
                "pressure": _Waves(rng, _DAY_S, 6 * _DAY_S),
                "wind": _Waves(rng, 3 * 3600, 2 * _DAY_S),
                "wind_deg": _Waves(rng, 6 * 3600, 3 * _DAY_S),
                "rain": _Waves(rng, 2 * 3600, _DAY_S),
            }
            if (
                len(self._by_place) > 1024
            ):  # a client sweeping coordinates must not grow this forever
                self._by_place.clear()
            self._by_place[key] = waves
        return waves

    def observe(self, lat: float, lon: float, t: float) -> Observation:
        w = self._waves(lat, lon)
        hemisphere = 1.0 if lat >= 0 else -1.0
        year_phase = 2 * math.pi * ((t % _YEAR_S) / _YEAR_S - 15 / 365.2422)  # coldest mid-January
        seasonal = -hemisphere * math.cos(year_phase) * min(12.0, 0.16 * abs(lat))
        clouds = _clamp(50 + 55 * w["clouds"](t), 0, 100)
        solar_hour = (t / 3600 + lon / 15) % 24
        diurnal_amp = 4.5 * (1 - 0.5 * clouds / 100)  # overcast days swing less
        diurnal = diurnal_amp * math.cos(2 * math.pi * (solar_hour - 15) / 24)  # warmest at 15:00
        temp = 28 - 0.35 * abs(lat) + seasonal + diurnal + 3.0 * w["temp"](t)
        humidity = _clamp(74 - 2.2 * diurnal + 14 * w["humidity"](t) + 0.1 * clouds, 18, 100)
        pressure = 1013 + 14 * w["pressure"](t)
        wind = max(0.2, 4.0 + 3.5 * w["wind"](t))
        wind_deg = (225 + 150 * w["wind_deg"](t)) % 360
        rain = w["rain"](t)

        sunrise, sunset = _sun_times(lat, lon, t)
        day = (
            sunrise <= t < sunset
            if sunrise < sunset
            else math.cos(2 * math.pi * (solar_hour - 12) / 24) > 0
        )
        condition_id, condition, description, icon = _condition(temp, humidity, wind, clouds, rain)
        feels = _apparent_temperature(temp, humidity, wind)
        spread = 0.4 + 0.6 * abs(w["temp"](t + 3600))  # stations around the city disagree a little
        visibility = 10_000 if condition_id >= 800 else 4_000 if condition_id != 701 else 1_500
        return Observation(
            dt=int(t),
            lat=round(lat, 4),
            lon=round(lon, 4),
            temp_c=round(temp, 2),
            feels_like_c=round(feels, 2),
            temp_min_c=round(temp - spread, 2),
            temp_max_c=round(temp + spread, 2),
            pressure_hpa=round(pressure),
            humidity_pct=round(humidity),
            wind_speed_ms=round(wind, 2),
            wind_deg=round(wind_deg) % 360,
            wind_gust_ms=round(wind * 1.6, 2),
            clouds_pct=round(clouds),
            visibility_m=visibility,
            condition_id=condition_id,
            condition=condition,
            description=description,
            icon=icon + ("d" if day else "n"),
            sunrise=sunrise,
            sunset=sunset,
            timezone_s=round(lon / 15) * 3600,
        )


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _apparent_temperature(temp_c: float, humidity_pct: float, wind_ms: float) -> float:
    """Steadman's apparent temperature (as the Australian BoM publishes it)."""
    vapour_hpa = humidity_pct / 100 * 6.105 * math.exp(17.27 * temp_c / (237.7 + temp_c))
    return temp_c + 0.33 * vapour_hpa - 0.70 * wind_ms - 4.0


def _condition(
    temp: float, humidity: float, wind: float, clouds: float, rain: float
) -> tuple[int, str, str, str]:
    """OpenWeatherMap condition (id, main, description, icon without the d/n suffix)."""
    if clouds > 70 and rain > 0.3:
        if temp > 18 and rain > 0.85:
            return 211, "Thunderstorm", "thunderstorm", "11"
        if temp <= 0.5:
            return (601, "Snow", "snow", "13") if rain > 0.6 else (600, "Snow", "light snow", "13")
        if rain > 0.75:
            return 502, "Rain", "heavy intensity rain", "10"
        if rain > 0.5:
            return 501, "Rain", "moderate rain", "10"
        return 500, "Rain", "light rain", "10"
    if humidity >= 96 and wind < 2.5:
        return 701, "Mist", "mist", "50"
    if clouds < 11:
        return 800, "Clear", "clear sky", "01"
    if clouds < 25:
        return 801, "Clouds", "few clouds", "02"
    if clouds < 51:
        return 802, "Clouds", "scattered clouds", "03"
    if clouds < 85:
        return 803, "Clouds", "broken clouds", "04"
    return 804, "Clouds", "overcast clouds", "04"


def _sun_times(lat: float, lon: float, t: float) -> tuple[int, int]:
    """Sunrise and sunset (Unix s) of the UTC day containing t; accurate to a few minutes."""
    day = datetime.fromtimestamp(t, UTC)
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    doy = day.timetuple().tm_yday
    declination = math.radians(-23.44) * math.cos(2 * math.pi / 365 * (doy + 10))
    cos_omega = -math.tan(math.radians(lat)) * math.tan(declination)
    # Polar day (cos < -1) and polar night (cos > 1): clamp, giving 24 h or 0 h of daylight.
    omega_h = math.degrees(math.acos(_clamp(cos_omega, -1.0, 1.0))) / 15
    noon_h = 12 - lon / 15
    return int(midnight + (noon_h - omega_h) * 3600), int(midnight + (noon_h + omega_h) * 3600)


_TEMPERATURE: dict[str, Callable[[float], float]] = {
    "metric": lambda c: round(c, 2),
    "imperial": lambda c: round(c * 9 / 5 + 32, 2),
    "standard": lambda c: round(c + 273.15, 2),
}
_SPEED: dict[str, Callable[[float], float]] = {
    "metric": lambda ms: round(ms, 2),
    "imperial": lambda ms: round(ms * 2.236936, 2),  # miles per hour
    "standard": lambda ms: round(ms, 2),
}


def to_owm(
    obs: Observation, units: str, *, city_id: int, name: str, country: str
) -> dict[str, Any]:
    """The OpenWeatherMap JSON of an observation; unknown units fall back to "standard" (Kelvin),
    as OpenWeatherMap does."""
    units = units if units in _TEMPERATURE else "standard"
    temp, speed = _TEMPERATURE[units], _SPEED[units]
    return {
        "coord": {"lon": obs.lon, "lat": obs.lat},
        "weather": [
            {
                "id": obs.condition_id,
                "main": obs.condition,
                "description": obs.description,
                "icon": obs.icon,
            }
        ],
        "base": "stations",
        "main": {
            "temp": temp(obs.temp_c),
            "feels_like": temp(obs.feels_like_c),
            "temp_min": temp(obs.temp_min_c),
            "temp_max": temp(obs.temp_max_c),
            "pressure": obs.pressure_hpa,
            "humidity": obs.humidity_pct,
            "sea_level": obs.pressure_hpa,
            "grnd_level": obs.pressure_hpa - 1,
        },
        "visibility": obs.visibility_m,
        "wind": {
            "speed": speed(obs.wind_speed_ms),
            "deg": obs.wind_deg,
            "gust": speed(obs.wind_gust_ms),
        },
        "clouds": {"all": obs.clouds_pct},
        "dt": obs.dt,
        "sys": {
            "type": 2,
            "id": 2_046_274,
            "country": country,
            "sunrise": obs.sunrise,
            "sunset": obs.sunset,
        },
        "timezone": obs.timezone_s,
        "id": city_id,
        "name": name,
        "cod": 200,
    }


# --------------------------------------------------------------------------- faults


class FaultSpec(BaseModel):
    """The whole fault set; also the body of ``PUT /_faults`` (missing keys mean "off")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_s: float = Field(default=0.0, ge=0, le=600)
    error_status: int = Field(default=500, ge=400, le=599)
    error_fraction: float = Field(default=0.0, ge=0, le=1)
    rate_limited: bool = False
    retry_after_s: int = Field(default=60, ge=0)
    down: bool = False
    #: With ``down``: come back after this many seconds (required over HTTP).
    down_s: float | None = Field(default=None, gt=0, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _down_s_means_down(cls, data: Any) -> Any:
        # Over HTTP, {"down_s": 3} alone is the natural spelling: it means down for 3 s.
        if isinstance(data, dict) and data.get("down_s") is not None and "down" not in data:
            return {**data, "down": True}
        return data


DownListener = Callable[[bool], None]


class WeatherFaults:
    """The faults in force. Methods are synchronous and take effect at once; call them from the
    event loop the server runs in (``down(seconds)`` schedules its own end on that loop)."""

    def __init__(self, seed: int = 0) -> None:
        self._spec = FaultSpec()
        self._rng = random.Random(f"faults:{seed}")  # which requests fail: reproducible too
        self._listeners: list[DownListener] = []
        self._up_timer: asyncio.TimerHandle | None = None

    @property
    def spec(self) -> FaultSpec:
        return self._spec

    @property
    def is_down(self) -> bool:
        return self._spec.down

    def slow(self, delay_s: float) -> None:
        self._set(delay_s=delay_s)

    def errors(self, status: int = 500, fraction: float = 1.0) -> None:
        self._set(error_status=status, error_fraction=fraction)

    def rate_limit(self, retry_after_s: int = 60) -> None:
        self._set(rate_limited=True, retry_after_s=retry_after_s)

    def down(self, seconds: float | None = None) -> None:
        """Connection refused (for ``seconds``, or until `up`/`clear`)."""
        self._set(down=True, down_s=seconds)

    def up(self) -> None:
        self._set(down=False, down_s=None)

    def clear(self) -> None:
        self.apply(FaultSpec())

    def apply(self, spec: FaultSpec) -> None:
        """Replace the whole fault set (what ``PUT /_faults`` does)."""
        was_down = self._spec.down
        self._spec = spec
        if self._up_timer is not None:
            self._up_timer.cancel()
            self._up_timer = None
        if spec.down and spec.down_s is not None:
            self._up_timer = asyncio.get_running_loop().call_later(spec.down_s, self.up)
        if spec.down != was_down:
            for listener in list(self._listeners):
                listener(spec.down)

    def watch(self, listener: DownListener) -> Callable[[], None]:
        """Call ``listener(is_down)`` whenever ``down`` flips; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def draw_error(self) -> int | None:
        """The status this request must fail with, or None (rate limit first, then errors)."""
        spec = self._spec
        if spec.rate_limited:
            return 429
        if spec.error_fraction and self._rng.random() < spec.error_fraction:
            return spec.error_status
        return None

    def _set(self, **changes: Any) -> None:
        self.apply(FaultSpec.model_validate({**self._spec.model_dump(), **changes}))


# --------------------------------------------------------------------------- the app


@dataclass(slots=True)
class WeatherConfig:
    host: str = "127.0.0.1"
    port: int = 8090  # 0 picks a free port (kept across down/up)
    api_key: str = "weather-key"
    seed: int = 1
    city_id: int = 2_759_794
    city_name: str = "Amsterdam"
    country: str = "NL"


@dataclass(slots=True)
class _AppState:
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
    state = _AppState(
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
            try:
                await asyncio.wait_for(state.interrupt.wait(), timeout=delay)
            except TimeoutError:
                pass
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


# --------------------------------------------------------------------------- the server


class WeatherServer:
    """``async with WeatherServer(WeatherConfig(port=0)) as weather:``; faults: ``weather.faults``."""

    def __init__(
        self,
        config: WeatherConfig,
        *,
        faults: WeatherFaults | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.faults = faults if faults is not None else WeatherFaults(config.seed)
        self.counts: Counter[str] = Counter()
        self.app = build_weather_app(config, self.faults, clock=clock, counts=self.counts)
        uv_config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(uv_config)
        self._task: asyncio.Task[None] | None = None
        self._relisten: asyncio.Task[None] | None = None
        self._unwatch: Callable[[], None] | None = None

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    async def start(self) -> None:
        sockets = [] if self.faults.is_down else [self._bind()]
        if not sockets:  # started "down": still pick (and remember) the port
            self._bind().close()
        self._unwatch = self.faults.watch(self._on_down_changed)
        self._task = asyncio.create_task(self._server.serve(sockets=sockets), name="fake-weather")
        async with asyncio.timeout(10):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self._cut()
        self._server.should_exit = self._server.force_exit = True
        if self._task is not None:
            await self._task
            self._task = None

    async def run_until_stopped(self) -> None:
        """For the standalone process: serve until uvicorn's signal handling ends the server."""
        if self._task is None:
            await self.start()
        assert self._task is not None
        await self._task
        self._cut()

    async def __aenter__(self) -> WeatherServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _bind(self) -> socket.socket:
        # Bound and listening synchronously: connections queue in the backlog from this moment,
        # so "up" takes effect at once even though uvicorn's startup is async.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        sock.listen(128)
        self.config.port = sock.getsockname()[1]
        return sock

    def _on_down_changed(self, down: bool) -> None:
        if down:
            self._cut()
            return
        sock = self._bind()
        self._relisten = asyncio.create_task(self._server.startup(sockets=[sock]))

    def _cut(self) -> None:
        """Stop listening and abort every open connection and in-flight request, like a crash."""
        if self._relisten is not None and not self._relisten.done():
            self._relisten.cancel()
        self._relisten = None
        for server in getattr(self._server, "servers", []):
            server.close()  # closes the listening socket: new connections are refused
        self._server.servers = []
        for conn in list(self._server.server_state.connections):
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.abort()
        state: _AppState = self.app.state.weather
        state.interrupt.set()
        state.interrupt = asyncio.Event()


# --------------------------------------------------------------------------- standalone


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.weather", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--api-key", required=True, help="the appid clients must send")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    config = WeatherConfig(host=args.host, port=args.port, api_key=args.api_key, seed=args.seed)

    # uvicorn handles SIGTERM/SIGINT (graceful stop) and re-raises the signal afterwards; these
    # handlers turn that into exit status 0, so a supervisor can tell "stopped" from "killed".
    def exit_cleanly(signum: int, frame: object) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, exit_cleanly)
    print(
        f"fake weather API on http://{config.host}:{config.port} (seed {config.seed})",
        file=sys.stderr,
    )
    asyncio.run(WeatherServer(config).run_until_stopped())


if __name__ == "__main__":
    main()
