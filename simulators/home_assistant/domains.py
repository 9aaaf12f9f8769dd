"""How each kind of fake Home Assistant entity is made, moves and looks.

A behaviour keeps an entity's internal data in a plain dict: ``create`` makes it (faker allowed
here), ``step`` moves it, always to something visibly different (Home Assistant fires
``state_changed`` only then), and ``render`` gives the state string and a fresh attributes dict.
Rendered dicts and the lists inside them are never mutated afterwards: old states stay valid.
"""

from __future__ import annotations

import colorsys
import random
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from faker import Faker

Data = dict[str, Any]

# Placeholder for "the time of the entity's first state", only known when the fleet first
# renders it (see Fleet._start); render() swaps in that time.
AT_START: Any = object()

# What Home Assistant still writes for an unavailable/unknown entity: capability attributes
# and the general ones (friendly_name, device_class, unit, supported_features).
KEEP_WHEN_UNAVAILABLE = frozenset({
    "friendly_name", "device_class", "unit_of_measurement", "state_class", "options",
    "supported_features", "supported_color_modes", "min_color_temp_kelvin",
    "max_color_temp_kelvin", "hvac_modes", "min_temp", "max_temp", "target_temp_step", "id",
})

# Identity and capability attributes: integrations do not flip these, values do.
NEVER_FLIP = KEEP_WHEN_UNAVAILABLE | {
    "color_mode", "hvac_action", "source_type", "mode", "media_content_type", "max",
}

_ROOMS = (
    "Living Room", "Kitchen", "Dining Room", "Hallway", "Bathroom", "Master Bedroom",
    "Guest Room", "Office", "Garage", "Basement", "Attic", "Laundry", "Porch", "Garden",
    "Nursery", "Den", "Patio", "Landing", "Utility Room", "Driveway",
)
_APPLIANCES = (
    "Washing Machine", "Dishwasher", "Fridge", "Freezer", "Heat Pump", "EV Charger", "Dryer",
    "Oven", "Desk", "TV", "Boiler", "Server Rack", "Solar Inverter", "Kettle",
)


@dataclass(slots=True)
class Pools:
    """Faker-made names drawn from per change (faker itself is too slow per change)."""

    people: list[str]
    rooms: list[str]
    zones: list[tuple[str, float, float]]
    home: tuple[float, float]
    titles: list[str]
    artists: list[str]
    albums: list[str]


def make_pools(fake: Faker) -> Pools:
    people = list(dict.fromkeys(fake.first_name() for _ in range(fake.random_int(2, 6))))
    lat, lon = (float(x) for x in fake.local_latlng(country_code="US")[:2])
    zone_names = [fake.company(), f"{fake.last_name()} Elementary", f"{fake.city()} Gym",
                  f"{fake.last_name()} Park", f"{fake.street_name()} Mall"]
    zones = [(z, round(lat + fake.random.uniform(-0.15, 0.15), 6),
              round(lon + fake.random.uniform(-0.15, 0.15), 6)) for z in zone_names]

    def title() -> str:
        return " ".join(fake.words(nb=fake.random_int(1, 4))).title()

    artists = [fake.name() if i % 3 else f"The {fake.last_name()}s" for i in range(30)]
    return Pools(people=people, rooms=[*_ROOMS, *(f"{p}'s Room" for p in people)],
                 zones=zones, home=(lat, lon), titles=[title() for _ in range(80)],
                 artists=artists, albums=[title() for _ in range(30)])


def slugify(text: str) -> str:
    """Home Assistant's object_id slug: ASCII, lowercase, runs of others become ``_``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_") or "unnamed"


def _pick(rng: random.Random, seq: Any) -> Any:
    return seq[int(rng.random() * len(seq))]  # rng.choice is ~4x slower per change


def _other(rng: random.Random, seq: Any, current: Any) -> Any:
    """A random element of ``seq`` different from ``current`` (when there is one)."""
    choice = _pick(rng, seq)
    if choice == current and len(seq) > 1:
        choice = seq[(seq.index(choice) + 1) % len(seq)]
    return choice


class Behaviour:
    """One domain's entities: create (at build/addition), step (per change), render."""

    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        raise NotImplementedError

    def step(self, d: Data, rng: random.Random, pools: Pools, iso: str) -> None:
        raise NotImplementedError

    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError


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
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        kind = rng.choices(_SENSOR_KINDS, _SENSOR_WEIGHTS)[0]
        room = _pick(rng, pools.rooms)
        if kind == "enum":
            device, options = _pick(rng, _ENUMS)
            name = f"{device} Status"
            attrs = {"options": options, "device_class": "enum", "friendly_name": name}
            return {"kind": kind, "name": name, "i": int(rng.random() * len(options)),
                    "attrs": attrs}
        if kind == "timestamp":
            name = f"{room} {_pick(rng, ('Last Motion', 'Last Seen', 'Last Boot'))}"
            attrs = {"device_class": "timestamp", "friendly_name": name}
            return {"kind": kind, "name": name, "ts": AT_START, "attrs": attrs}
        unit, state_class, lo, hi, dec, step, walk = _NUMERIC[kind]
        label = _LABELS.get(kind, kind.capitalize())
        if kind in ("power", "energy", "voltage", "current"):
            name = f"{_pick(rng, _APPLIANCES)} {label}"
        elif kind == "battery" and rng.random() < 0.3:
            name = f"{_pick(rng, pools.people)}'s Phone Battery"
        elif kind == "battery":
            name = f"{room} {_pick(rng, ('Motion Sensor', 'Remote', 'Lock'))} Battery"
        else:
            name = f"{room} {label}"
        value = rng.uniform(0.0, 5000.0) if walk == "up" else rng.uniform(lo, hi)
        attrs = {"state_class": state_class, "unit_of_measurement": unit, "device_class": kind,
                 "friendly_name": name}
        return {"kind": "number", "name": name, "v": round(value, dec), "lo": lo, "hi": hi,
                "dec": dec,
                "step": step, "walk": walk, "fmt": f"%.{dec}f", "dir": -1, "attrs": attrs}

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
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        dc = rng.choices(("motion", "door", "window", "occupancy", "moisture"), (5, 3, 3, 1, 1))[0]
        room = _pick(rng, pools.rooms)
        name = f"{room} {'Leak' if dc == 'moisture' else dc.capitalize()}"
        battery = rng.randint(30, 100) if rng.random() < 0.4 else None
        return {"on": rng.random() < 0.2, "dc": dc, "battery": battery, "name": name,
                "attrs": {"device_class": dc, "friendly_name": name}}

    def step(self, d: Data, rng: random.Random, pools: Pools, iso: str) -> None:
        d["on"] = not d["on"]
        if d["battery"] is not None and rng.random() < 0.05:
            d["battery"] = max(1, d["battery"] - 1)

    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        state = "on" if d["on"] else "off"
        if d["battery"] is None:
            return state, d["attrs"]
        return state, {"battery_level": d["battery"], "device_class": d["dc"],
                       "friendly_name": d["name"]}


class Switch(Behaviour):
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        what = _pick(rng, ("Plug", "Fan", "Heater", "Outlet", "Pump", "Christmas Lights"))
        name = f"{_pick(rng, pools.rooms)} {what}"
        return {"on": rng.random() < 0.4, "name": name, "attrs": {"friendly_name": name}}

    def step(self, d: Data, rng: random.Random, pools: Pools, iso: str) -> None:
        d["on"] = not d["on"]

    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        return ("on" if d["on"] else "off"), d["attrs"]


def _kelvin_hs(kelvin: int) -> tuple[float, float]:
    """Rough hs of a white at ``kelvin`` (HA reports hs/rgb for colour-temperature mode too)."""
    t = (kelvin - 2000) / 4535
    return round(27.0 + 27.0 * t, 3), round(2.0 + 86.0 * (1.0 - t) ** 1.5, 3)


class Light(Behaviour):
    _MODES = {"onoff": ["onoff"], "brightness": ["brightness"], "color_temp": ["color_temp"],
              "color": ["color_temp", "hs"]}

    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        kind = rng.choices(("onoff", "brightness", "color_temp", "color"), (1, 4, 3, 3))[0]
        what = _pick(rng, ("Light", "Lamp", "Ceiling", "Spots", "Strip", "Pendant"))
        return {"kind": kind, "name": f"{_pick(rng, pools.rooms)} {what}",
                "on": rng.random() < 0.35, "bri": rng.randint(20, 255),
                "mode": "hs" if kind == "color" and rng.random() < 0.5 else "color_temp",
                "k": rng.randrange(2200, 6500, 100),
                "hs": (round(rng.uniform(0, 360), 3), round(rng.uniform(20, 100), 3))}

    def step(self, d: Data, rng: random.Random, pools: Pools, iso: str) -> None:
        kind = d["kind"]
        r = rng.random()
        if not d["on"]:
            d["on"] = True
            if r < 0.5:
                d["bri"] = rng.randint(25, 255)
        elif r < 0.45 or kind == "onoff":
            d["on"] = False
        elif kind in ("color_temp", "color") and r < 0.7:
            if kind == "color" and rng.random() < 0.5:
                d["mode"] = "hs"
                d["hs"] = (round(rng.uniform(0, 360), 3), round(rng.uniform(20, 100), 3))
            else:
                k = rng.randrange(2000, 6501, 50)
                if k == d["k"] and d["mode"] == "color_temp":
                    k = k + 50 if k < 6500 else k - 50
                d["k"] = k
                d["mode"] = "color_temp"
        else:
            bri = rng.randint(1, 255)
            d["bri"] = bri if bri != d["bri"] else bri % 255 + 1

    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        kind, on = d["kind"], d["on"]
        colour = kind in ("color_temp", "color")
        a: dict[str, Any] = {}
        if colour:
            a["min_color_temp_kelvin"] = 2000
            a["max_color_temp_kelvin"] = 6535
        a["supported_color_modes"] = self._MODES[kind]  # shared, never mutated
        if kind == "onoff":
            a["color_mode"] = "onoff" if on else None
        elif not on:  # HA reports the colour attributes as None while off
            a["color_mode"] = None
            a["brightness"] = None
            if colour:
                a["color_temp_kelvin"] = a["hs_color"] = a["rgb_color"] = None
        else:
            a["color_mode"] = d["mode"] if colour else "brightness"
            a["brightness"] = d["bri"]
            if colour:
                ct = d["mode"] == "color_temp"
                h, s = _kelvin_hs(d["k"]) if ct else d["hs"]
                a["color_temp_kelvin"] = d["k"] if ct else None
                a["hs_color"] = [h, s]
                a["rgb_color"] = [round(c * 255) for c in colorsys.hsv_to_rgb(h / 360, s / 100, 1)]
        a["friendly_name"] = d["name"]
        a["supported_features"] = 40 if colour else 32 if kind == "brightness" else 0
        return ("on" if on else "off"), a


class Climate(Behaviour):
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        modes = ["off", "heat", "cool", "auto"] if rng.random() < 0.6 else ["off", "heat"]
        what = _pick(rng, ("Thermostat", "Heating", "Air Conditioner", "Radiator"))
        return {"name": f"{_pick(rng, pools.rooms)} {what}", "modes": modes,
                "mode": _pick(rng, modes[1:]) if rng.random() < 0.8 else "off",
                "cur": round(rng.uniform(16.0, 25.0), 1), "target": rng.randrange(36, 46) / 2}

    def step(self, d: Data, rng: random.Random, pools: Pools, iso: str) -> None:
        r = rng.random()
        if r < 0.06:
            d["mode"] = _other(rng, d["modes"], d["mode"])
        elif r < 0.2:
            delta = (1 + int(rng.random() * 4)) * 0.5 * (1 if rng.random() < 0.5 else -1)
            target = d["target"] + delta
            d["target"] = target if 7.0 <= target <= 35.0 else d["target"] - delta
        else:  # the room warms while heating, cools while cooling, wanders otherwise
            action = self._action(d)
            sign = 1 if action == "heating" else -1 if action == "cooling" else (
                1 if rng.random() < 0.5 else -1)
            cur = round(min(max(d["cur"] + sign * (0.1 + rng.random() * 0.2), 5.0), 35.0), 1)
            d["cur"] = cur if cur != d["cur"] else round(d["cur"] - sign * 0.1, 1)

    @staticmethod
    def _action(d: Data) -> str:
        mode, cur, target = d["mode"], d["cur"], d["target"]
        if mode == "off":
            return "off"
        if mode in ("heat", "auto") and cur < target - 0.3:
            return "heating"
        if mode in ("cool", "auto") and cur > target + 0.3:
            return "cooling"
        return "idle"

    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        return d["mode"], {
            "hvac_modes": d["modes"], "min_temp": 7.0, "max_temp": 35.0, "target_temp_step": 0.5,
            "current_temperature": d["cur"], "temperature": float(d["target"]),
            "hvac_action": self._action(d), "friendly_name": d["name"], "supported_features": 385,
        }


class MediaPlayer(Behaviour):
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        what, dc = _pick(rng, (("Speaker", "speaker"), ("TV", "tv"), ("Sonos", "speaker"),
                               ("Chromecast", "tv"), ("Soundbar", "speaker")))
        d = {"name": f"{_pick(rng, pools.rooms)} {what}", "dc": dc,
             "st": rng.choices(("off", "idle", "playing", "paused"), (4, 2, 3, 1))[0],
             "vol": round(rng.random(), 2), "muted": rng.random() < 0.05,
             "features": _pick(rng, (152461, 21437, 4127))}
        self._track(d, rng, pools, AT_START)
        return d

    @staticmethod
    def _track(d: Data, rng: random.Random, pools: Pools, at: Any) -> None:
        d["title"], d["artist"] = _pick(rng, pools.titles), _pick(rng, pools.artists)
        d["album"], d["dur"] = _pick(rng, pools.albums), rng.randint(90, 420)
        d["pos"], d["at"] = 0, at

    def step(self, d: Data, rng: random.Random, pools: Pools, iso: str) -> None:
        st, r = d["st"], rng.random()
        if st == "off" or st == "idle":
            if r < (0.5 if st == "off" else 0.7):
                d["st"] = "playing"
                self._track(d, rng, pools, iso)
            else:
                d["st"] = "idle" if st == "off" else "off"
        elif st == "playing":
            if r < 0.45:
                self._track(d, rng, pools, iso)
            elif r < 0.7:
                d["st"], d["at"] = "paused", iso
                d["pos"] = min(d["dur"], d["pos"] + rng.randint(5, 200))
            elif r < 0.85:
                vol = round(d["vol"] + (0.05 if rng.random() < 0.5 else -0.05), 2)
                d["vol"] = vol if 0.0 <= vol <= 1.0 else round(d["vol"] - (vol - d["vol"]), 2)
            else:
                d["st"] = "idle" if r < 0.95 else "off"
        else:  # paused
            d["st"] = "playing" if r < 0.6 else "idle" if r < 0.85 else "off"
            d["at"] = iso

    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        st = d["st"]
        if d["at"] is AT_START:
            d["at"] = iso
        a: dict[str, Any] = {}
        if st != "off":
            a["volume_level"] = d["vol"]
            a["is_volume_muted"] = d["muted"]
        if st in ("playing", "paused"):
            a.update(media_content_type="music", media_duration=d["dur"], media_position=d["pos"],
                     media_position_updated_at=d["at"], media_title=d["title"],
                     media_artist=d["artist"], media_album_name=d["album"])
        a["device_class"] = d["dc"]
        a["friendly_name"] = d["name"]
        a["supported_features"] = d["features"]
        return st, a


class DeviceTracker(Behaviour):
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        person = _pick(rng, pools.people) if rng.random() < 0.8 else fake.first_name()
        device = _pick(rng, ("iPhone", "Pixel", "Phone", "Galaxy", "iPad", "Watch"))
        d = {"name": f"{person}'s {device}", "acc": rng.randint(5, 40),
             "batt": rng.randint(15, 100), "alt": round(rng.uniform(0.0, 120.0), 1)}
        self._go(d, rng, pools, rng.choices(("home", "not_home", "zone"), (6, 3, 1))[0])
        return d

    @staticmethod
    def _go(d: Data, rng: random.Random, pools: Pools, where: str) -> None:
        lat, lon = pools.home
        if where == "zone":
            where, lat, lon = _pick(rng, pools.zones)
        elif where == "not_home":
            lat += rng.uniform(0.01, 0.2) * (1 if rng.random() < 0.5 else -1)
            lon += rng.uniform(0.01, 0.2) * (1 if rng.random() < 0.5 else -1)
        d["where"] = where
        d["lat"] = round(lat + rng.uniform(-3e-4, 3e-4), 7)
        d["lon"] = round(lon + rng.uniform(-3e-4, 3e-4), 7)

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

    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        return d["where"], {
            "source_type": "gps", "battery_level": d["batt"], "latitude": d["lat"],
            "longitude": d["lon"], "gps_accuracy": d["acc"], "altitude": d["alt"],
            "friendly_name": d["name"],
        }


_AUTOMATIONS = (
    "{room} lights on motion", "Turn off {room} lights at midnight", "Good morning {person}",
    "Notify {person} when the {room} door opens", "{room} climate schedule", "Away mode",
    "Close {room} blinds at sunset", "{person} arrives home", "Low battery alert",
    "{room} fan when humid", "Bedtime routine",
)


class Automation(Behaviour):
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        name = _pick(rng, _AUTOMATIONS).format(room=_pick(rng, pools.rooms),
                                                person=_pick(rng, pools.people))
        return {"name": name, "id": str(1_600_000_000_000 + int(rng.random() * 1e11)),
                "mode": rng.choices(("single", "restart", "queued", "parallel"), (6, 2, 1, 1))[0],
                "on": rng.random() < 0.92, "cur": 0,
                "last": AT_START if rng.random() < 0.8 else None}

    def step(self, d: Data, rng: random.Random, pools: Pools, iso: str) -> None:
        if d["cur"]:  # the run that the previous change started has finished
            d["cur"] = 0
        elif not d["on"]:
            d["on"] = True
        elif rng.random() < 0.93:
            d["cur"], d["last"] = 1, iso
        else:
            d["on"] = False

    # A run as the fleet's causes play it (see causes.py): Home Assistant writes the
    # automation's state when a run starts (current 1, last_triggered) and when it ends
    # (current 0), both under the run's context, with the actions' changes in between.

    @staticmethod
    def start_run(d: Data, iso: str) -> None:
        d["cur"], d["last"] = 1, iso

    @staticmethod
    def end_run(d: Data) -> None:
        d["cur"] = 0

    @staticmethod
    def can_run(d: Data) -> bool:
        """A disabled automation does not trigger; one still running is left alone."""
        return bool(d["on"]) and not d["cur"]

    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        if d["last"] is AT_START:
            d["last"] = iso
        a = {"id": d["id"], "last_triggered": d["last"], "mode": d["mode"], "current": d["cur"]}
        if d["mode"] in ("queued", "parallel"):
            a["max"] = 10
        a["friendly_name"] = d["name"]
        return ("on" if d["on"] else "off"), a


BEHAVIOURS: dict[str, Behaviour] = {
    "sensor": Sensor(), "binary_sensor": BinarySensor(), "switch": Switch(), "light": Light(),
    "automation": Automation(), "device_tracker": DeviceTracker(),
    "media_player": MediaPlayer(), "climate": Climate(),
}
