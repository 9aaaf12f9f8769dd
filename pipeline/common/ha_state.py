"""What a Home Assistant client reports: its state, and the Prometheus families made from it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["HAClientState", "ha_metric_families"]


@dataclass
class HAClientState:
    """What metrics and health read. Counters grow over the client's life, across connections."""

    connected: bool = False  # a websocket is open
    authenticated: bool = False  # ... and HA said auth_ok on it
    subscribed: bool = False  # ... and our one subscription is active: events flow
    connects: int = 0  # connections that reached `subscribed`
    reconnects: int = 0  # connection attempts after the first
    events: int = 0  # events handed to the callback
    frames: int = 0  # websocket frames read (a coalesced frame holds several messages)
    bad_frames: int = 0  # not JSON, binary, or a message that is not an object
    # events of no subscription of ours, replies nobody waits for, unknown types
    unexpected: int = 0
    callback_errors: int = 0
    heartbeat_timeouts: int = 0  # half-open connections detected
    last_event_ns: int | None = None  # wall clock of the last event received
    last_error: str | None = None  # why the last connection ended (or failed to start)
    fatal_error: str | None = None  # set when the client gave up for good (auth_invalid)
    ha_version: str | None = None
    # Monotonic time since which no connection is subscribed; None while one is.
    down_since: float | None = field(default_factory=time.monotonic)

    def down_for(self, now: float | None = None) -> float:
        """Seconds without a subscribed connection (0.0 while subscribed)."""
        if self.down_since is None:
            return 0.0
        return max(0.0, (time.monotonic() if now is None else now) - self.down_since)

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("down_since")
        doc["down_for_s"] = round(self.down_for(), 3)
        return doc


def ha_metric_families(state: HAClientState) -> Iterator[Metric]:
    """Prometheus families for a client's state, for a service's custom collector."""
    yield GaugeMetricFamily("cutover_ha_connected",
                            "1 while subscribed to Home Assistant events",
                            value=int(state.subscribed))
    yield GaugeMetricFamily("cutover_ha_auth_failed",
                            "1 once Home Assistant refused the token (the client stopped)",
                            value=int(state.fatal_error is not None))
    yield GaugeMetricFamily("cutover_ha_down_seconds",
                            "Seconds without a subscribed Home Assistant connection",
                            value=state.down_for())
    for name, doc, value in (
        ("cutover_ha_reconnects", "Connection attempts after the first", state.reconnects),
        ("cutover_ha_events", "Events received from Home Assistant", state.events),
        ("cutover_ha_frames", "Websocket frames read", state.frames),
        ("cutover_ha_bad_frames", "Frames that were not JSON objects", state.bad_frames),
        ("cutover_ha_unexpected_messages", "Messages no subscription or command expected",
         state.unexpected),
        ("cutover_ha_heartbeat_timeouts", "Half-open connections detected by the heartbeat",
         state.heartbeat_timeouts),
    ):
        yield CounterMetricFamily(name, doc, value=value)
