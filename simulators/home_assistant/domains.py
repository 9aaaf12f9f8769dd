"""Which behaviour each Home Assistant domain the fake fleet can hold has.

The behaviours themselves live by kind: ``sensors``, ``devices``, ``trackers``,
``automations`` (their shared interface in ``behaviour``).
"""

from __future__ import annotations

from .automations import Automation
from .behaviour import Behaviour
from .devices import Climate, Light, MediaPlayer, Switch
from .sensors import BinarySensor, Sensor
from .trackers import DeviceTracker

__all__ = ["BEHAVIOURS"]

BEHAVIOURS: dict[str, Behaviour] = {
    "sensor": Sensor(), "binary_sensor": BinarySensor(), "switch": Switch(), "light": Light(),
    "automation": Automation(), "device_tracker": DeviceTracker(),
    "media_player": MediaPlayer(), "climate": Climate(),
}
