"""Enrich one event: the cached weather and the validation flags; `state` is never touched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.common.events import Event

from .flags import Flagger
from .weather import WeatherCache

__all__ = ["WEATHER_STALE", "Enriched", "Enricher"]

#: Flag on events that carry weather older than the TTL (served while the API is failing).
WEATHER_STALE = "weather_stale"

WeatherUse = Literal["fresh", "stale", "none"]


@dataclass(frozen=True, slots=True)
class Enriched:
    event: Event
    weather: WeatherUse
    new_flags: list[str]


class Enricher:
    def __init__(self, cache: WeatherCache, flagger: Flagger) -> None:
        self.cache = cache
        self.flagger = flagger

    def enrich(self, event: Event, now_ns: int) -> Enriched:
        """Synchronous on purpose: nothing here may wait for anything (FAILURE_MODES.md #13)."""
        flags = self.flagger.flags_for(event)
        found = self.cache.lookup(now_ns)
        if found is not None and found.freshness == "stale" and WEATHER_STALE not in event.flags:
            flags.append(WEATHER_STALE)
        update = {
            "enriched_at_ns": now_ns,
            # Weather from an earlier pass (an event re-sent by a sender) is replaced, not kept:
            # weather_enriched must describe the weather this event now carries.
            "weather": None if found is None else found.weather,
            "weather_enriched": found is not None,
            "flags": [*event.flags, *flags] if flags else list(event.flags),
        }
        # model_copy skips validation: every value above is built here from validated parts.
        return Enriched(
            event.model_copy(update=update), "none" if found is None else found.freshness, flags
        )
