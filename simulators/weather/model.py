"""The weather itself: a pure function of (seed, place, time), so two runs with the same seed
and clock answer the same, and values drift plausibly (a seasonal and daily cycle plus slow
seeded waves)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .physics import apparent_temperature, clamp, sky_condition, sun_times

__all__ = ["Observation", "WeatherModel"]

_DAY_S = 86_400.0
_YEAR_S = 365.2422 * _DAY_S


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
        clouds = clamp(50 + 55 * w["clouds"](t), 0, 100)
        solar_hour = (t / 3600 + lon / 15) % 24
        diurnal_amp = 4.5 * (1 - 0.5 * clouds / 100)  # overcast days swing less
        diurnal = diurnal_amp * math.cos(2 * math.pi * (solar_hour - 15) / 24)  # warmest at 15:00
        temp = 28 - 0.35 * abs(lat) + seasonal + diurnal + 3.0 * w["temp"](t)
        humidity = clamp(74 - 2.2 * diurnal + 14 * w["humidity"](t) + 0.1 * clouds, 18, 100)
        pressure = 1013 + 14 * w["pressure"](t)
        wind = max(0.2, 4.0 + 3.5 * w["wind"](t))
        wind_deg = (225 + 150 * w["wind_deg"](t)) % 360
        rain = w["rain"](t)

        sunrise, sunset = sun_times(lat, lon, t)
        day = (
            sunrise <= t < sunset
            if sunrise < sunset
            else math.cos(2 * math.pi * (solar_hour - 12) / 24) > 0
        )
        condition_id, condition, description, icon = sky_condition(
            temp, humidity, wind, clouds, rain)
        feels = apparent_temperature(temp, humidity, wind)
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
