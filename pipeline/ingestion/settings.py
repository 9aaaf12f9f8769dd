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
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=2.0, gt=0)
    # Largest group written to the outbox in one transaction (bounds one commit's duration).
    commit_max_group: int = Field(default=2000, ge=1)
    # How long a SIGTERM keeps forwarding before leaving the rest in the durable outbox.
    shutdown_flush_s: float = Field(default=5.0, ge=0)
