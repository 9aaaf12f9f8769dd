"""enrichment-pipeline's settings, from CUTOVER_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from pipeline.common.config import EnvSettings

__all__ = ["EnrichmentSettings"]


class EnrichmentSettings(EnvSettings):
    host: str = "127.0.0.1"
    port: int = Field(default=8002, ge=1, le=65535)
    data_dir: Path = Path("data/enrichment")
    log_level: str = "INFO"

    storage_url: str = "http://127.0.0.1:8004"
    batch_size: int = Field(default=500, ge=1)  # events per POST to storage
    # after a part batch, wait this long for the next to fill: fewer requests and less CPU
    # under load, but no higher edge in bench/pipeline.py and a longer p95, so off by default
    forward_linger_s: float = Field(default=0.0, ge=0, le=1)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=2.0, gt=0)

    weather_url: str = "http://127.0.0.1:8090"
    weather_api_key: SecretStr | None = None  # unset: no weather (events pass, not enriched)
    # The home's location; defaults match the fake Home Assistant's configuration.
    latitude: float = Field(default=52.3731, ge=-90, le=90)
    longitude: float = Field(default=4.8922, ge=-180, le=180)
    weather_ttl_s: float = Field(default=300.0, gt=0)  # fresh for this long after a fetch
    weather_timeout_s: float = Field(default=2.0, gt=0)  # hard limit on one call to the API
    # Past TTL the last reading is still served (marked stale) for this long, then dropped:
    # weather from hours ago describes some other afternoon.
    weather_max_stale_s: float = Field(default=3 * 3600.0, gt=0)

    # /health turns 503 once storage has been unreachable, with the outbox growing, this long.
    health_stall_s: float = Field(default=10.0, gt=0)
    dedupe_window: int = Field(default=100_000, ge=0)  # recent event ids remembered
    attribute_type_entities: int = Field(default=10_000, ge=1)  # LRU size of the type tracker
