"""Configuration of the legacy monolith (CUTOVER_* environment variables)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from pipeline.common.ha_settings import HAClientSettings


class LegacySettings(HAClientSettings):
    port: int = Field(default=8000, ge=1, le=65535)

    influx_url: str = "http://127.0.0.1:8086"
    influx_version: Literal["1", "2"] = "1"
    influx_db: str = Field(default="home_assistant_events", min_length=1)
    influx_token: SecretStr | None = None  # 2.x only
    influx_org: str | None = None  # 2.x only
    influx_timeout_s: float = Field(default=5.0, gt=0)

    # The monolith's in-memory buffer: events beyond it are dropped (and counted).
    legacy_buffer: int = Field(default=100_000, ge=1)
    legacy_batch_size: int = Field(default=1000, ge=1)
    legacy_flush_interval_s: float = Field(default=0.02, gt=0)
    # A failed write is retried this many times (backoff base, doubling), then dropped.
    legacy_write_retries: int = Field(default=3, ge=0)
    legacy_retry_backoff_s: float = Field(default=0.1, ge=0)
    # SIGTERM: how long the buffer may take to reach InfluxDB before the rest is dropped.
    shutdown_flush_s: float = Field(default=8.0, ge=0)

    @model_validator(mode="after")
    def _v2_credentials(self) -> LegacySettings:
        if self.influx_version == "2" and (self.influx_token is None or not self.influx_org):
            raise ValueError("InfluxDB 2.x needs CUTOVER_INFLUX_TOKEN and CUTOVER_INFLUX_ORG")
        return self
