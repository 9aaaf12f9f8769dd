"""What ``get_config`` answers: Home Assistant's core configuration, as a real one sends it
(clients such as hass-client validate its shape)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .config import ServerConfig

__all__ = ["core_config"]


def core_config(cfg: ServerConfig, entity_ids: Iterable[str]) -> dict[str, Any]:
    """The configuration of a Home Assistant whose entities are ``entity_ids``."""
    allowlist_external_dirs = ["/config/www", "/media"]
    return {
        "latitude": cfg.latitude, "longitude": cfg.longitude, "elevation": cfg.elevation,
        "radius": 100,
        "unit_system": {"length": "km", "accumulated_precipitation": "mm", "area": "m²",
                        "mass": "g", "pressure": "Pa", "temperature": "°C",
                        "volume": "L", "wind_speed": "m/s"},
        "location_name": cfg.location_name, "time_zone": cfg.time_zone,
        "components": sorted({eid.split(".", 1)[0] for eid in entity_ids}
                             | {"api", "websocket_api", "http", "recorder", "history"}),
        "config_dir": "/config", "allowlist_external_dirs": allowlist_external_dirs,
        "allowlist_external_urls": [], "version": cfg.ha_version,
        "config_source": "storage", "recovery_mode": False, "state": "RUNNING",
        "external_url": None, "internal_url": None, "currency": "EUR", "country": "NL",
        "language": "en", "safe_mode": False, "debug": False,
        # Home Assistant still sends the legacy name (Config.as_dict: "backwards compat");
        # hass-client's Config model requires it.
        "whitelist_external_dirs": allowlist_external_dirs,
    }
