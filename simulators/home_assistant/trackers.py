"""``device_tracker``: people's phones at home, in a zone, or away, with GPS fixes."""

from __future__ import annotations

import random
from typing import Any

from faker import Faker
from typing_extensions import override  # typing.override from Python 3.12 on

from .behaviour import Behaviour, Data, Pools, pick

__all__ = ["DeviceTracker"]


class DeviceTracker(Behaviour):
    """``device_tracker``: a phone's presence and position."""

    @override
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        person = pick(rng, pools.people) if rng.random() < 0.8 else fake.first_name()
        device = pick(rng, ("iPhone", "Pixel", "Phone", "Galaxy", "iPad", "Watch"))
        d = {"name": f"{person}'s {device}", "acc": rng.randint(5, 40),
             "batt": rng.randint(15, 100), "alt": round(rng.uniform(0.0, 120.0), 1)}
        self._go(d, rng, pools, rng.choices(("home", "not_home", "zone"), (6, 3, 1))[0])
        return d

    @staticmethod
    def _go(d: Data, rng: random.Random, pools: Pools, where: str) -> None:
        lat, lon = pools.home
        if where == "zone":
            where, lat, lon = pick(rng, pools.zones)
        elif where == "not_home":
            lat += rng.uniform(0.01, 0.2) * (1 if rng.random() < 0.5 else -1)
            lon += rng.uniform(0.01, 0.2) * (1 if rng.random() < 0.5 else -1)
        d["where"] = where
        d["lat"] = round(lat + rng.uniform(-3e-4, 3e-4), 7)
        d["lon"] = round(lon + rng.uniform(-3e-4, 3e-4), 7)

    @override
    def step(self, d: Data, rng: random.Random, pools: Pools, iso: str) -> None:
        where, r = d["where"], rng.random()
        if where != "not_home" and r < 0.35:
            self._go(d, rng, pools, "not_home")
        elif where == "not_home" and r < 0.25:
            self._go(d, rng, pools, "home" if rng.random() < 0.5 else "zone")
        else:  # a new fix: never exactly the same position
            span = 0.02 if where == "not_home" else 2e-4
            sign = 1 if rng.random() < 0.5 else -1
            d["lat"] = round(d["lat"] + (1e-6 + rng.random() * span) * sign, 7)
            d["lon"] = round(d["lon"] + (rng.random() - 0.5) * span, 7)
        d["acc"] = rng.randint(5, 65)
        if rng.random() < 0.3:  # charges at home, drains elsewhere
            d["batt"] = min(100, d["batt"] + 2) if where == "home" else max(1, d["batt"] - 1)

    @override
    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        return d["where"], {
            "source_type": "gps", "battery_level": d["batt"], "latitude": d["lat"],
            "longitude": d["lon"], "gps_accuracy": d["acc"], "altitude": d["alt"],
            "friendly_name": d["name"],
        }
