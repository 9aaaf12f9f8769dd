"""OpenWeatherMap's wire format: an observation as its JSON, and its own error bodies, so a
client's parsing and error handling are exercised as in production."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .model import Observation

__all__ = ["RATE_LIMITED_BODY", "UNAUTHORIZED_BODY", "to_owm"]

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
