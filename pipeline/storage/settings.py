"""Configuration of the data-storage service (CUTOVER_* environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from pipeline.common.config import EnvSettings


class StorageSettings(EnvSettings):
    host: str = "127.0.0.1"
    port: int = Field(default=8004, ge=1, le=65535)
    data_dir: Path = Path("./data/storage")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    influx_url: str = "http://127.0.0.1:8086"
    influx_version: Literal["1", "2"] = "1"
    influx_db: str = Field(default="home_assistant_events", min_length=1)
    influx_shadow_db: str = Field(default="home_assistant_events_shadow", min_length=1)
    influx_token: SecretStr | None = None  # 2.x only
    influx_org: str | None = None  # 2.x only

    # Write path (BatchWriter). 5,000 lines is InfluxDB's recommended batch size.
    max_batch: int = Field(default=5000, ge=1)
    # Short: one write is in flight at a time, so under load batches grow while it is out
    # anyway; a long window only adds its length to every event at moderate rates (at
    # 1,000/s a 20 ms window put p95 at 111 ms, 2 ms at 71 ms).
    flush_interval_s: float = Field(default=0.002, gt=0)
    # Capped low so that writes resume within ~2 s of InfluxDB coming back after an outage.
    retry_cap_s: float = Field(default=2.0, gt=0)
    # How long a SIGTERM waits for the queues to drain into InfluxDB; what is left stays in
    # the durable queue for the next start.
    shutdown_flush_s: float = Field(default=8.0, ge=0)

    # Event ids remembered per database to count duplicate deliveries (not to drop them).
    dedup_window: int = Field(default=100_000, ge=1)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # /health: unhealthy once InfluxDB has been unreachable (or every write failing) this long,
    # or the queue has held lines with no successful write this long.
    unreachable_after_s: float = Field(default=5.0, gt=0)
    stalled_after_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _distinct_databases(self) -> StorageSettings:
        if self.influx_db == self.influx_shadow_db:
            raise ValueError("CUTOVER_INFLUX_DB and CUTOVER_INFLUX_SHADOW_DB must differ")
        if self.influx_version == "2" and (self.influx_token is None or not self.influx_org):
            raise ValueError("InfluxDB 2.x needs CUTOVER_INFLUX_TOKEN and CUTOVER_INFLUX_ORG")
        return self
