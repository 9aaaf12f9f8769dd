"""Weather for the home's location: a cache that the hot path reads, a refresher that fills it.

The one rule (FAILURE_MODES.md #13): no event ever waits for the weather API. `WeatherCache.lookup`
is a synchronous dictionary read; only `WeatherRefresher`, a background task, talks to the API,
one call at a time, each under a hard timeout. When the API is slow, failing or rate-limiting,
events get the last good reading (marked stale once it is older than the TTL), and when there
is none fit to use, no weather at all (``weather_enriched=false``): never a delay.

The last good reading is also kept in a small file, so a restart during a weather outage still
has something to serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson

from pipeline.common.httpclient import backoff_delay

__all__ = [
    "FetchOutcome",
    "WeatherCache",
    "WeatherLookup",
    "WeatherRefresher",
    "WeatherSnapshot",
    "parse_owm",
]

log = logging.getLogger(__name__)

FetchOutcome = Literal[
    "ok",
    "timeout",
    "connect_error",
    "server_error",
    "rate_limited",
    "unauthorized",
    "rejected",
    "invalid",
]
Freshness = Literal["fresh", "stale"]


@dataclass(frozen=True, slots=True)
class WeatherSnapshot:
    """One good reading: the event's weather fields (without age_s) and when it was fetched."""

    values: dict[str, float | str]
    fetched_at_ns: int  # wall clock: the age must survive a restart (the file)


@dataclass(frozen=True, slots=True)
class WeatherLookup:
    weather: dict[str, float | str]  # the event's weather fields, age_s included
    freshness: Freshness
    age_s: float


class WeatherCache:
    """The last good reading and the rules for serving it: fresh, stale or not at all."""

    def __init__(
        self, ttl_s: float, max_stale_s: float, *, wall_clock_ns: Callable[[], int] = time.time_ns
    ) -> None:
        self.ttl_s = ttl_s
        self.max_stale_s = max(max_stale_s, ttl_s)
        self.snapshot: WeatherSnapshot | None = None
        self._clock = wall_clock_ns

    def put(self, snapshot: WeatherSnapshot) -> None:
        self.snapshot = snapshot

    def age_s(self, now_ns: int | None = None) -> float | None:
        if self.snapshot is None:
            return None
        now = self._clock() if now_ns is None else now_ns
        # A reading from "the future" (clock stepped back) is treated as brand new, not negative.
        return max(0.0, (now - self.snapshot.fetched_at_ns) / 1e9)

    def lookup(self, now_ns: int) -> WeatherLookup | None:
        """The weather to put on an event enriched at ``now_ns``, or None when there is none fit."""
        snapshot = self.snapshot
        if snapshot is None:
            return None
        age = max(0.0, (now_ns - snapshot.fetched_at_ns) / 1e9)
        if age > self.max_stale_s:
            return None
        weather = dict(snapshot.values)
        weather["age_s"] = round(age, 3)
        return WeatherLookup(weather, "fresh" if age <= self.ttl_s else "stale", age)


def _number(doc: Mapping[str, Any], key: str) -> float | None:
    value = doc.get(key)
    # bool is an int to Python: a True temperature is a broken answer, not 1 degree.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _section(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def parse_owm(doc: object) -> dict[str, float | str]:
    """The event's weather fields from an OpenWeatherMap current-weather answer (units=metric).

    Raises ValueError when the answer has no usable temperature. Other fields are optional:
    a missing one is left out rather than guessed; numbers stay numbers and strings stay strings
    (a field that changed type would make InfluxDB refuse the batch, FAILURE_MODES.md #3).
    """
    if not isinstance(doc, dict):
        raise ValueError("weather answer is not a JSON object")
    main = _section(doc, "main")
    temp = _number(main, "temp")
    if temp is None:
        raise ValueError("weather answer has no numeric main.temp")
    values: dict[str, float | str] = {"temperature_c": temp}
    wind, clouds = _section(doc, "wind"), _section(doc, "clouds")
    for name, source, key in (
        ("feels_like_c", main, "feels_like"),
        ("humidity_pct", main, "humidity"),
        ("pressure_hpa", main, "pressure"),
        ("wind_speed_ms", wind, "speed"),
        ("wind_deg", wind, "deg"),
        ("clouds_pct", clouds, "all"),
    ):
        number = _number(source, key)
        if number is not None:
            values[name] = number
    conditions = doc.get("weather")
    if isinstance(conditions, list) and conditions and isinstance(conditions[0], dict):
        for name, key in (("condition", "main"), ("description", "description")):
            text = conditions[0].get(key)
            if isinstance(text, str) and text:
                values[name] = text
    return values


class WeatherRefresher:
    """Background task: fetch the weather every TTL/2, back off on failure, fill the cache.

    ``on_outcome(outcome, seconds)`` is called after every call (the metrics hook).
    """

    def __init__(
        self,
        cache: WeatherCache,
        client: httpx.AsyncClient,
        url: str,
        *,
        api_key: str,
        latitude: float,
        longitude: float,
        timeout_s: float,
        store: Path | None = None,
        on_outcome: Callable[[FetchOutcome, float], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.cache = cache
        self.client = client
        self.url = url.rstrip("/") + "/data/2.5/weather"
        self.params = {
            "lat": str(latitude),
            "lon": str(longitude),
            "appid": api_key,
            "units": "metric",
        }
        self.timeout_s = timeout_s
        self.store = store
        self.on_outcome = on_outcome
        self.refresh_s = cache.ttl_s / 2  # a fetch that fails once still leaves time to retry
        self.last_outcome: FetchOutcome | None = None
        self.last_error: str | None = None
        self.consecutive_failures = 0
        self._retry_after: float | None = None
        self._rng = rng if rng is not None else random.Random()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def load(self) -> None:
        """Put the reading kept by the previous run into the cache (if any and still readable)."""
        if self.store is None:
            return
        try:
            raw = await asyncio.to_thread(self.store.read_bytes)
            doc = orjson.loads(raw)
            snapshot = WeatherSnapshot(
                values=_saved_values(doc["values"]), fetched_at_ns=int(doc["fetched_at_ns"])
            )
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "ignoring unreadable saved weather",
                extra={"path": str(self.store), "error": repr(exc)},
            )
            return
        self.cache.put(snapshot)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="weather-refresher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        while True:
            outcome = await self.fetch_once()
            await asyncio.sleep(self.next_delay(outcome))

    # -- one fetch -----------------------------------------------------------------------------

    async def fetch_once(self) -> FetchOutcome:
        started = time.monotonic()
        outcome, error, values = await self._call()
        elapsed = time.monotonic() - started
        if values is not None:
            snapshot = WeatherSnapshot(values=values, fetched_at_ns=time.time_ns())
            self.cache.put(snapshot)
            await self._save(snapshot)
        self._note(outcome, error)
        if self.on_outcome is not None:
            self.on_outcome(outcome, elapsed)
        return outcome

    async def _call(self) -> tuple[FetchOutcome, str | None, dict[str, float | str] | None]:
        self._retry_after = None
        try:
            # The hard limit: httpx's own timeouts are per phase (connect, each read); this one
            # bounds the whole call, however the server dribbles its answer.
            async with asyncio.timeout(self.timeout_s):
                response = await self.client.get(self.url, params=self.params)
        except TimeoutError:
            return "timeout", f"no answer within {self.timeout_s}s", None
        except httpx.TimeoutException as exc:
            return "timeout", repr(exc), None
        except httpx.TransportError as exc:
            return "connect_error", repr(exc), None
        status = response.status_code
        if status == 429:
            self._retry_after = _retry_after(response)
            return "rate_limited", "HTTP 429", None
        if status in (401, 403):
            return "unauthorized", f"HTTP {status}: check CUTOVER_WEATHER_API_KEY", None
        if status >= 500:
            return "server_error", f"HTTP {status}", None
        if status != 200:
            return "rejected", f"HTTP {status}: {response.text[:200]}", None
        try:
            return "ok", None, parse_owm(orjson.loads(response.content))
        except (orjson.JSONDecodeError, ValueError) as exc:
            return "invalid", str(exc), None

    def _note(self, outcome: FetchOutcome, error: str | None) -> None:
        if outcome == "ok":
            if self.consecutive_failures:
                log.info(
                    "weather API answering again",
                    extra={"after_failures": self.consecutive_failures},
                )
            self.consecutive_failures = 0
        else:
            if self.consecutive_failures == 0:  # log the transition, not every retry
                log.warning(
                    "weather fetch failing; serving cached weather",
                    extra={"outcome": outcome, "error": error},
                )
            self.consecutive_failures += 1
        self.last_outcome = outcome
        self.last_error = error

    def next_delay(self, outcome: FetchOutcome) -> float:
        """Seconds until the next call after ``outcome``."""
        if outcome == "ok":
            return self.refresh_s
        delay = max(
            0.1,
            backoff_delay(
                self.consecutive_failures,
                min(1.0, self.refresh_s),
                max(self.refresh_s, 0.1),
                self._rng,
            ),
        )
        if self._retry_after is not None:
            # The API asked for a pause: hammering it would only prolong the ban.
            delay = max(delay, min(self._retry_after, 3600.0))
        return delay

    async def _save(self, snapshot: WeatherSnapshot) -> None:
        if self.store is None:
            return
        data = orjson.dumps({"values": snapshot.values, "fetched_at_ns": snapshot.fetched_at_ns})
        try:
            await asyncio.to_thread(_write_atomically, self.store, data)
        except OSError as exc:  # the cache in memory still works; only a restart loses it
            log.warning(
                "could not save weather", extra={"path": str(self.store), "error": repr(exc)}
            )


def _saved_values(doc: object) -> dict[str, float | str]:
    """Saved weather fields, checked as strictly as a fresh answer."""
    if not isinstance(doc, dict) or "temperature_c" not in doc:
        raise ValueError("saved weather has no temperature_c")
    values: dict[str, float | str] = {}
    for key, value in doc.items():
        if isinstance(value, str):
            values[str(key)] = value
        elif (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ):
            values[str(key)] = float(value)
        else:
            raise ValueError(f"saved weather field {key!r} is neither a number nor a string")
    return values


def _retry_after(response: httpx.Response) -> float | None:
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one
