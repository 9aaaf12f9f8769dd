"""``automation``: the entities whose runs cause other changes (see causes.py)."""

from __future__ import annotations

import random
from typing import Any

from faker import Faker
from typing_extensions import override  # typing.override from Python 3.12 on

from .behaviour import AT_START, Behaviour, Data, Pools, pick

__all__ = ["Automation"]

_AUTOMATIONS = (
    "{room} lights on motion", "Turn off {room} lights at midnight", "Good morning {person}",
    "Notify {person} when the {room} door opens", "{room} climate schedule", "Away mode",
    "Close {room} blinds at sunset", "{person} arrives home", "Low battery alert",
    "{room} fan when humid", "Bedtime routine",
)


class Automation(Behaviour):
    """``automation``: enabled or not, and its runs."""

    @override
    def create(self, pools: Pools, fake: Faker, rng: random.Random) -> Data:
        name = pick(rng, _AUTOMATIONS).format(room=pick(rng, pools.rooms),
                                                person=pick(rng, pools.people))
        return {"name": name, "id": str(1_600_000_000_000 + int(rng.random() * 1e11)),
                "mode": rng.choices(("single", "restart", "queued", "parallel"), (6, 2, 1, 1))[0],
                "on": rng.random() < 0.92, "cur": 0,
                "last": AT_START if rng.random() < 0.8 else None}

    @override
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

    @override
    def render(self, d: Data, iso: str) -> tuple[str, dict[str, Any]]:
        if d["last"] is AT_START:
            d["last"] = iso
        a = {"id": d["id"], "last_triggered": d["last"], "mode": d["mode"], "current": d["cur"]}
        if d["mode"] in ("queued", "parallel"):
            a["max"] = 10
        a["friendly_name"] = d["name"]
        return ("on" if d["on"] else "off"), a
