"""What every kind of fake Home Assistant entity shares: the :class:`Behaviour` interface,
the name pools it draws from, and the rules Home Assistant applies to all domains.

A behaviour keeps an entity's internal data in a plain dict: ``create`` makes it (faker allowed
here), ``step`` moves it, always to something visibly different (Home Assistant fires
``state_changed`` only then), and ``render`` gives the state string and a fresh attributes dict.
Rendered dicts and the lists inside them are never mutated afterwards: old states stay valid.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, cast

from faker import Faker

__all__ = [
    "AT_START",
    "KEEP_WHEN_UNAVAILABLE",
    "NEVER_FLIP",
    "Behaviour",
    "Data",
    "Pools",
    "make_pools",
    "other",
    "pick",
    "slugify",
]

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
    """The run's names, places and media titles, made once by faker."""
    people = list(dict.fromkeys(fake.first_name() for _ in range(fake.random_int(2, 6))))
    # None only for a country faker has no places for; it has US ones
    latlng = cast("tuple[str, ...]", fake.local_latlng(country_code="US"))
    lat, lon = (float(x) for x in latlng[:2])
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


def pick(rng: random.Random, seq: Any) -> Any:
    """A random element of ``seq``."""
    return seq[int(rng.random() * len(seq))]  # rng.choice is ~4x slower per change


def other(rng: random.Random, seq: Any, current: Any) -> Any:
    """A random element of ``seq`` different from ``current`` (when there is one)."""
    choice = pick(rng, seq)
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
