"""The entities Home Assistant controls: ``switch``, ``light``, ``climate`` and
``media_player``."""

from __future__ import annotations

import colorsys
import random
from typing import Any

from faker import Faker
from typing_extensions import override  # typing.override from Python 3.12 on

from .behaviour import AT_START, Behaviour, Data, Pools, other, pick

__all__ = ["Climate", "Light", "MediaPlayer", "Switch"]


class Switch(Behaviour):
    """``switch``: a plug, fan or heater, toggled."""

    @override
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        what = pick(rng, ("Plug", "Fan", "Heater", "Outlet", "Pump", "Christmas Lights"))
        name = f"{pick(rng, pools.rooms)} {what}"
        return {"on": rng.random() < 0.4, "name": name, "attrs": {"friendly_name": name}}

    @override
    def step(self, d: Data, rng: random.Random, pools: Pools, iso: str) -> None:
        d["on"] = not d["on"]

    @override
    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        return ("on" if d["on"] else "off"), d["attrs"]


def _kelvin_hs(kelvin: int) -> tuple[float, float]:
    """Rough hs of a white at ``kelvin`` (HA reports hs/rgb for colour-temperature mode too)."""
    t = (kelvin - 2000) / 4535
    return round(27.0 + 27.0 * t, 3), round(2.0 + 86.0 * (1.0 - t) ** 1.5, 3)


class Light(Behaviour):
    """``light``: on/off, brightness, colour temperature or colour."""

    _MODES = {"onoff": ["onoff"], "brightness": ["brightness"], "color_temp": ["color_temp"],
              "color": ["color_temp", "hs"]}

    @override
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        kind = rng.choices(("onoff", "brightness", "color_temp", "color"), (1, 4, 3, 3))[0]
        what = pick(rng, ("Light", "Lamp", "Ceiling", "Spots", "Strip", "Pendant"))
        return {"kind": kind, "name": f"{pick(rng, pools.rooms)} {what}",
                "on": rng.random() < 0.35, "bri": rng.randint(20, 255),
                "mode": "hs" if kind == "color" and rng.random() < 0.5 else "color_temp",
                "k": rng.randrange(2200, 6500, 100),
                "hs": (round(rng.uniform(0, 360), 3), round(rng.uniform(20, 100), 3))}

    @override
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

    @override
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
    """``climate``: a thermostat whose room follows its mode."""

    @override
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        modes = ["off", "heat", "cool", "auto"] if rng.random() < 0.6 else ["off", "heat"]
        what = pick(rng, ("Thermostat", "Heating", "Air Conditioner", "Radiator"))
        return {"name": f"{pick(rng, pools.rooms)} {what}", "modes": modes,
                "mode": pick(rng, modes[1:]) if rng.random() < 0.8 else "off",
                "cur": round(rng.uniform(16.0, 25.0), 1), "target": rng.randrange(36, 46) / 2}

    @override
    def step(self, d: Data, rng: random.Random, pools: Pools, iso: str) -> None:
        r = rng.random()
        if r < 0.06:
            d["mode"] = other(rng, d["modes"], d["mode"])
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

    @override
    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        return d["mode"], {
            "hvac_modes": d["modes"], "min_temp": 7.0, "max_temp": 35.0, "target_temp_step": 0.5,
            "current_temperature": d["cur"], "temperature": float(d["target"]),
            "hvac_action": self._action(d), "friendly_name": d["name"], "supported_features": 385,
        }


class MediaPlayer(Behaviour):
    """``media_player``: a speaker or TV playing, pausing, idling."""

    @override
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        what, dc = pick(rng, (("Speaker", "speaker"), ("TV", "tv"), ("Sonos", "speaker"),
                               ("Chromecast", "tv"), ("Soundbar", "speaker")))
        d = {"name": f"{pick(rng, pools.rooms)} {what}", "dc": dc,
             "st": rng.choices(("off", "idle", "playing", "paused"), (4, 2, 3, 1))[0],
             "vol": round(rng.random(), 2), "muted": rng.random() < 0.05,
             "features": pick(rng, (152461, 21437, 4127))}
        self._track(d, rng, pools, AT_START)
        return d

    @staticmethod
    def _track(d: Data, rng: random.Random, pools: Pools, at: Any) -> None:
        d["title"], d["artist"] = pick(rng, pools.titles), pick(rng, pools.artists)
        d["album"], d["dur"] = pick(rng, pools.albums), rng.randint(90, 420)
        d["pos"], d["at"] = 0, at

    @override
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

    @override
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
