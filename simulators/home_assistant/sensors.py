"""The entities Home Assistant reads: ``sensor`` (numbers that walk, enums, timestamps) and
``binary_sensor`` (motion, doors, windows, leaks)."""

from __future__ import annotations

import random
from typing import Any

from faker import Faker
from typing_extensions import override  # typing.override from Python 3.12 on

from .behaviour import AT_START, Behaviour, Data, Pools, pick

__all__ = ["BinarySensor", "Sensor"]

_APPLIANCES = (
    "Washing Machine", "Dishwasher", "Fridge", "Freezer", "Heat Pump", "EV Charger", "Dryer",
    "Oven", "Desk", "TV", "Boiler", "Server Rack", "Solar Inverter", "Kettle",
)

# device_class: unit, state_class, low, high, decimals, step, walk ("walk", "up", "battery")
_NUMERIC: dict[str, tuple[str, str, float, float, int, float, str]] = {
    "temperature": ("°C", "measurement", 12.0, 30.0, 1, 0.3, "walk"),
    "humidity": ("%", "measurement", 20.0, 90.0, 0, 2.0, "walk"),
    "power": ("W", "measurement", 0.0, 3500.0, 1, 150.0, "walk"),
    "energy": ("kWh", "total_increasing", 0.0, 1e9, 3, 0.05, "up"),
    "illuminance": ("lx", "measurement", 0.0, 2000.0, 0, 80.0, "walk"),
    "battery": ("%", "measurement", 1.0, 100.0, 0, 1.0, "battery"),
    "pressure": ("hPa", "measurement", 970.0, 1045.0, 1, 0.4, "walk"),
    "voltage": ("V", "measurement", 220.0, 250.0, 1, 0.8, "walk"),
    "current": ("A", "measurement", 0.0, 16.0, 2, 0.5, "walk"),
    "carbon_dioxide": ("ppm", "measurement", 400.0, 2500.0, 0, 30.0, "walk"),
    "signal_strength": ("dBm", "measurement", -95.0, -30.0, 0, 3.0, "walk"),
}
_SENSOR_KINDS = (*_NUMERIC, "enum", "timestamp")
_SENSOR_WEIGHTS = (6, 3, 4, 3, 2, 4, 1, 1, 1, 1, 2, 2, 1)
_LABELS = {"carbon_dioxide": "CO2", "signal_strength": "Signal strength"}
_ENUMS = (
    ("Washing Machine", ["off", "idle", "washing", "rinsing", "spinning", "finished"]),
    ("Dishwasher", ["off", "idle", "pre_wash", "washing", "drying", "finished"]),
    ("Robot Vacuum", ["docked", "cleaning", "returning", "paused", "error"]),
    ("Printer", ["idle", "printing", "warming_up", "stopped"]),
)


class Sensor(Behaviour):
    """``sensor``: a measurement that walks, an enum, or a timestamp."""

    @override
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        kind = rng.choices(_SENSOR_KINDS, _SENSOR_WEIGHTS)[0]
        room = pick(rng, pools.rooms)
        if kind == "enum":
            device, options = pick(rng, _ENUMS)
            name = f"{device} Status"
            attrs = {"options": options, "device_class": "enum", "friendly_name": name}
            return {"kind": kind, "name": name, "i": int(rng.random() * len(options)),
                    "attrs": attrs}
        if kind == "timestamp":
            name = f"{room} {pick(rng, ('Last Motion', 'Last Seen', 'Last Boot'))}"
            attrs = {"device_class": "timestamp", "friendly_name": name}
            return {"kind": kind, "name": name, "ts": AT_START, "attrs": attrs}
        unit, state_class, lo, hi, dec, step, walk = _NUMERIC[kind]
        label = _LABELS.get(kind, kind.capitalize())
        if kind in ("power", "energy", "voltage", "current"):
            name = f"{pick(rng, _APPLIANCES)} {label}"
        elif kind == "battery" and rng.random() < 0.3:
            name = f"{pick(rng, pools.people)}'s Phone Battery"
        elif kind == "battery":
            name = f"{room} {pick(rng, ('Motion Sensor', 'Remote', 'Lock'))} Battery"
        else:
            name = f"{room} {label}"
        value = rng.uniform(0.0, 5000.0) if walk == "up" else rng.uniform(lo, hi)
        attrs = {"state_class": state_class, "unit_of_measurement": unit, "device_class": kind,
                 "friendly_name": name}
        return {"kind": "number", "name": name, "v": round(value, dec), "lo": lo, "hi": hi,
                "dec": dec,
                "step": step, "walk": walk, "fmt": f"%.{dec}f", "dir": -1, "attrs": attrs}

    @override
    def step(self, d: Data, rng: random.Random, pools: Pools, iso: str) -> None:
        kind = d["kind"]
        if kind == "enum":  # any other option
            n = len(d["attrs"]["options"])
            d["i"] = (d["i"] + 1 + int(rng.random() * (n - 1))) % n
            return
        if kind == "timestamp":
            d["ts"] = iso
            return
        v, lo, hi, dec, walk = d["v"], d["lo"], d["hi"], d["dec"], d["walk"]
        unit = 10.0 ** -dec
        if walk == "up":  # a meter only counts up
            new = v + max(unit, rng.random() * d["step"])
        elif walk == "battery":  # drains a point at a time, then charges
            if v <= 5:
                d["dir"] = 1
            elif v >= 100:
                d["dir"] = -1
            new = v + d["dir"] * (1 if d["dir"] < 0 else 3)
        else:  # random walk, reflected at the bounds
            new = v + (rng.random() * 2.0 - 1.0) * d["step"]
            new = 2 * lo - new if new < lo else 2 * hi - new if new > hi else new
        new = round(min(max(new, lo), hi), dec)
        if new == v:  # must show: HA fires no state_changed for an unchanged state
            new = round(v + unit if v + unit <= hi else v - unit, dec)
        d["v"] = new + 0.0 if new else 0.0  # never "-0.0"

    @override
    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        kind = d["kind"]
        if kind == "number":
            return d["fmt"] % d["v"], d["attrs"]
        if kind == "enum":
            return d["attrs"]["options"][d["i"]], d["attrs"]
        if d["ts"] is AT_START:
            d["ts"] = iso
        return d["ts"], d["attrs"]


class BinarySensor(Behaviour):
    """``binary_sensor``: on/off, sometimes with a battery level."""

    @override
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        dc = rng.choices(("motion", "door", "window", "occupancy", "moisture"), (5, 3, 3, 1, 1))[0]
        room = pick(rng, pools.rooms)
        name = f"{room} {'Leak' if dc == 'moisture' else dc.capitalize()}"
        battery = rng.randint(30, 100) if rng.random() < 0.4 else None
        return {"on": rng.random() < 0.2, "dc": dc, "battery": battery, "name": name,
                "attrs": {"device_class": dc, "friendly_name": name}}

    @override
    def step(self, d: Data, rng: random.Random, pools: Pools, iso: str) -> None:
        d["on"] = not d["on"]
        if d["battery"] is not None and rng.random() < 0.05:
            d["battery"] = max(1, d["battery"] - 1)

    @override
    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        state = "on" if d["on"] else "off"
        if d["battery"] is None:
            return state, d["attrs"]
        return state, {"battery_level": d["battery"], "device_class": d["dc"],
                       "friendly_name": d["name"]}
