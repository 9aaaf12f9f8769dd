"""The formulas an observation is made of: apparent temperature, OpenWeatherMap's condition
codes and sunrise/sunset, each a plain function of the values it needs."""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = ["apparent_temperature", "clamp", "sky_condition", "sun_times"]


def clamp(value: float, low: float, high: float) -> float:
    """``value``, kept within ``[low, high]``."""
    return max(low, min(high, value))


def apparent_temperature(temp_c: float, humidity_pct: float, wind_ms: float) -> float:
    """Steadman's apparent temperature (as the Australian BoM publishes it)."""
    vapour_hpa = humidity_pct / 100 * 6.105 * math.exp(17.27 * temp_c / (237.7 + temp_c))
    return temp_c + 0.33 * vapour_hpa - 0.70 * wind_ms - 4.0


def sky_condition(
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


def sun_times(lat: float, lon: float, t: float) -> tuple[int, int]:
    """Sunrise and sunset (Unix s) of the UTC day containing t; accurate to a few minutes."""
    day = datetime.fromtimestamp(t, UTC)
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    doy = day.timetuple().tm_yday
    declination = math.radians(-23.44) * math.cos(2 * math.pi / 365 * (doy + 10))
    cos_omega = -math.tan(math.radians(lat)) * math.tan(declination)
    # Polar day (cos < -1) and polar night (cos > 1): clamp, giving 24 h or 0 h of daylight.
    omega_h = math.degrees(math.acos(clamp(cos_omega, -1.0, 1.0))) / 15
    noon_h = 12 - lon / 15
    return int(midnight + (noon_h - omega_h) * 3600), int(midnight + (noon_h + omega_h) * 3600)
