"""Settings every Home Assistant client service shares (legacy and websocket-ingestion)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from pipeline.common.config import EnvSettings


class HAClientSettings(EnvSettings):
    host: str = "127.0.0.1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    ha_url: str = "ws://127.0.0.1:8123/api/websocket"
    ha_token: SecretStr = Field(min_length=1)
    # App-level heartbeat: a ping every ha_ping_interval_s, no pong within ha_pong_timeout_s
    # means a half-open connection. Backoff between reconnects: 0, 1, 2, 3, 4, 5, 5... x base.
    ha_ping_interval_s: float = Field(default=10.0, gt=0)
    ha_pong_timeout_s: float = Field(default=5.0, gt=0)
    ha_backoff_base_s: float = Field(default=1.0, ge=0)

    # Empty or unset: no control plane, the service owns every event (legacy: before the
    # migration; the new chain: after it).
    admin_url: str | None = None
    routing_poll_s: float = Field(default=0.2, gt=0)

    # /health: 503 after this long without a subscribed HA connection, or with events held
    # and nothing processed for this long.
    ha_down_after_s: float = Field(default=5.0, gt=0)
    stalled_after_s: float = Field(default=10.0, gt=0)

    @field_validator("admin_url")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None
