"""Configuration of websocket-ingestion (CUTOVER_* environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from pipeline.common.ha_settings import HAClientSettings


class IngestionSettings(HAClientSettings):
    port: int = Field(default=8001, ge=1, le=65535)
    data_dir: Path = Path("./data/ingestion")

    enrichment_url: str = "http://127.0.0.1:8002"
    forward_batch: int = Field(default=500, ge=1)
    # after a part batch, wait this long for the next to fill: fewer requests and less CPU
    # under load, but no higher edge in bench/pipeline.py and a longer p95, so off by default
    forward_linger_s: float = Field(default=0.0, ge=0, le=1)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=2.0, gt=0)
    # Largest group written to the outbox in one transaction (bounds one commit's duration).
    commit_max_group: int = Field(default=2000, ge=1)
    # How long a SIGTERM keeps forwarding before leaving the rest in the durable outbox.
    shutdown_flush_s: float = Field(default=5.0, ge=0)

    # Gap recovery from Home Assistant's history (pipeline/ingestion/recovery.py). The longest
    # gap read back (0: recovery off); the wait for the recorder's commit (polled, or this long
    # when no event comes live); how long a pass may wait for the recorder; slice length.
    recovery_max_window_s: float = Field(default=3600.0, ge=0)
    recovery_poll_s: float = Field(default=1.0, gt=0)
    recovery_quiet_lag_s: float = Field(default=6.0, ge=0)
    recovery_timeout_s: float = Field(default=60.0, gt=0)
    recovery_slice_s: float = Field(default=60.0, gt=0)
