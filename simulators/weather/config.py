"""How a fake weather API is set up: where it listens, the key it wants, its seed and city."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WeatherConfig"]


@dataclass(slots=True)
class WeatherConfig:
    """Where it listens, the ``appid`` it accepts, its seed, and the city it answers for."""

    host: str = "127.0.0.1"
    port: int = 8090  # 0 picks a free port (kept across down/up)
    api_key: str = "weather-key"
    seed: int = 1
    city_id: int = 2_759_794
    city_name: str = "Amsterdam"
    country: str = "NL"
