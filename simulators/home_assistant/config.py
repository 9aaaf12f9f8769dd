"""The fake Home Assistant's settings, in a module of their own.

Both ``server`` and ``connection`` read them; keeping them apart lets the dependency run one
way (server uses connection) with no import back from connection to server.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import protocol


@dataclass(slots=True)
class ServerConfig:
    """How the fake behaves; defaults are Home Assistant's."""

    host: str = "127.0.0.1"
    port: int = 8123  # 0 picks a free port (kept across restarts)
    token: str = "cutover-token"  # noqa: S105 - tests' default; `fake-ha` makes up its own
    ha_version: str = protocol.HA_VERSION
    auth_timeout: float = 10.0
    max_pending: int = 4096
    pending_peak: int = 1024
    pending_peak_seconds: float = 10.0
    ping_interval: float | None = 55.0  # websocket-level pings; a peer that does not pong is closed
    max_frame: int = 4 * 1024 * 1024
    location_name: str = "Home"
    latitude: float = 52.3731
    longitude: float = 4.8922
    elevation: int = 0
    time_zone: str = "Europe/Amsterdam"
    # The recorder (history/history_during_period): how many states it keeps, oldest purged
    # first (the fleet's states take about 0.8 kB each: 40 MB at the bound), and how long a
    # state takes to be committed and visible (a real recorder commits in the background every
    # few seconds; tests that need it at once set 0).
    history_max_states: int = 50_000
    history_commit_lag: float = 1.0
