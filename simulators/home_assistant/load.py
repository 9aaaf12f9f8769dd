"""How many ``state_changed`` events the fake Home Assistant fires, and when.

A load profile is a rate over time (events per second). Every profile, and :class:`ReplaySource`,
is a :class:`Schedule`: it knows ``expected(t)``, the exact cumulative number of events due ``t``
seconds after it started. The :class:`Pacer` fires ``floor(expected) - fired`` at each look, so
a late event loop is caught up and over any window the count follows the profile;
:func:`run_pacer` is the loop that drives it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import inspect
import json
import math
import random
import re
import time
from array import array
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, Union, runtime_checkable

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .durations import parse_duration
from .events import StateChange
from .limits import (
    BURST_WHY,
    DURATION_WHY,
    MAX_BURST,
    MAX_DURATION_S,
    MAX_RATE,
    MAX_REPLAY_SPEED,
    RATE_WHY,
    OutOfBounds,
    human_seconds,
)
from .timefmt import iso_from_ns, ns_from_iso, ulid

__all__ = [
    "BurstProfile",
    "ConstantProfile",
    "LoadProfile",
    "Pacer",
    "RampProfile",
    "Rate",
    "ReplayProfile",
    "ReplaySource",
    "ReplayTimeline",
    "Schedule",
    "SoakProfile",
    "SpikeProfile",
    "Step",
    "StepProfile",
    "parse_profile",
    "parse_rate",
    "run_pacer",
]

# --------------------------------------------------------------------------------------- rates

_RATE_HINT = "expected a number of events per second like '20/s', '1200/min' or '36000/h'"
_RATE_RE = re.compile(r"\s*([^/\s]+)\s*(?:/\s*([A-Za-z]+))?\s*")
_PER_UNIT = {
    "s": 1.0, "sec": 1.0, "second": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0,
}  # fmt: skip


def parse_rate(text: str | float | int) -> float:
    """Events per second from ``20``, ``"20/s"``, ``"1200/min"`` (or ``/m``) or ``"36000/h"``."""
    # bool is an int subclass; `rate: true` in YAML is a mistake, not 1/s.
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"rate {text!r}: {_RATE_HINT}")
    if isinstance(text, str):
        match = _RATE_RE.fullmatch(text)
        per = _PER_UNIT.get((match.group(2) or "s").lower()) if match else None
        if match is None or per is None:
            raise ValueError(f"rate {text!r}: {_RATE_HINT}")
        try:
            value = float(match.group(1))
        except ValueError:
            raise ValueError(f"rate {text!r}: {_RATE_HINT}") from None
    else:
        value, per = float(text), 1.0
    if not math.isfinite(value):
        raise ValueError(f"rate {text!r}: {_RATE_HINT}")
    if value < 0:
        raise ValueError(f"rate {text!r}: must not be negative; {_RATE_HINT}")
    if value / per > MAX_RATE:
        raise OutOfBounds(f"rate {text!r}: at most {MAX_RATE:g}/s, {RATE_WHY}")
    return value / per


Rate = Annotated[float, BeforeValidator(parse_rate)]


def _seconds(value: Any) -> float:
    # The one duration syntax ('90s', '5m', a bare number of seconds, '1e9' as before); the
    # bounds are checked with the profile's other sizes (_within_bounds), in their words.
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    try:
        return parse_duration(value, maximum=math.inf)
    except OverflowError:  # an int too large for a float: past every bound
        return math.inf


Seconds = Annotated[float, BeforeValidator(_seconds)]
"""A pydantic field type: a number (per second) or a string :func:`parse_rate` understands."""


# ------------------------------------------------------------------------------------ profiles


@runtime_checkable
class Schedule(Protocol):
    """What :class:`Pacer` drives: every profile below and :class:`ReplaySource` are one.

    ``t`` is seconds since the schedule started; ``expected`` must be non-decreasing and 0 for
    ``t < 0``; an impulse (a burst) counts in ``expected(0)`` without showing in ``rate_at``.
    """

    def expected(self, t: float) -> float: ...
    def rate_at(self, t: float) -> float: ...
    def finished(self, t: float) -> bool: ...


class _Profile(BaseModel):
    # Frozen: a running profile is only ever replaced (Pacer.set_profile), never edited in place.
    # extra="forbid": a misspelt key in a scenario file ("duraton") must fail, not be ignored.
    model_config = ConfigDict(frozen=True, extra="forbid")

    def expected(self, t: float) -> float:
        """Events due by ``t`` seconds after the start: the exact integral of the rate."""
        raise NotImplementedError

    def rate_at(self, t: float) -> float:
        """Events per second at ``t``."""
        raise NotImplementedError

    def finished(self, t: float) -> bool:
        """True once nothing more will ever be due (never, for profiles that hold a rate)."""
        return False

    @model_validator(mode="after")
    def _within_bounds(self) -> _Profile:
        # One check for every profile's times and sizes (see limits.py for the why).
        for name in ("duration", "at", "period"):
            value = getattr(self, name, None)
            if isinstance(value, float) and not value <= MAX_DURATION_S:  # also inf and NaN
                raise OutOfBounds(f"{name} {value:g} s: at most {human_seconds(MAX_DURATION_S)} "
                                 f"({MAX_DURATION_S:.0f} s), {DURATION_WHY}")
        rate, wobble = getattr(self, "rate", 0.0), getattr(self, "wobble", 0.0)
        if rate * (1 + wobble) > MAX_RATE:  # a soak's swing peaks above its rate
            raise OutOfBounds(f"rate {rate:g}/s swung by wobble {wobble:g} peaks at "
                             f"{rate * (1 + wobble):g}/s: at most {MAX_RATE:g}/s, {RATE_WHY}")
        return self


class ConstantProfile(_Profile):
    """``rate`` events per second, for ``duration`` seconds or (None) forever."""

    kind: Literal["constant"] = "constant"
    rate: Rate
    duration: Seconds | None = Field(None, gt=0)

    def expected(self, t: float) -> float:
        if t <= 0:
            return 0.0
        if self.duration is not None:
            t = min(t, self.duration)
        return self.rate * t

    def rate_at(self, t: float) -> float:
        if t < 0 or (self.duration is not None and t >= self.duration):
            return 0.0
        return self.rate

    def finished(self, t: float) -> bool:
        return self.duration is not None and t >= self.duration


class RampProfile(_Profile):
    """Linear from ``start_rate`` to ``end_rate`` over ``duration`` seconds, then ``end_rate``."""

    kind: Literal["ramp"] = "ramp"
    start_rate: Rate
    end_rate: Rate
    duration: Seconds = Field(gt=0)

    def expected(self, t: float) -> float:
        if t <= 0:
            return 0.0
        d, a, b = self.duration, self.start_rate, self.end_rate
        if t <= d:
            return a * t + (b - a) * t * t / (2 * d)
        return (a + b) * d / 2 + b * (t - d)

    def rate_at(self, t: float) -> float:
        if t < 0:
            return 0.0
        if t >= self.duration:
            return self.end_rate
        return self.start_rate + (self.end_rate - self.start_rate) * t / self.duration


class Step(BaseModel):
    """One step of a :class:`StepProfile`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    rate: Rate
    duration: Seconds = Field(gt=0)

    @field_validator("duration")
    @classmethod
    def _duration_bounded(cls, duration: float) -> float:
        if not duration <= MAX_DURATION_S:  # also inf
            raise OutOfBounds(f"duration {duration:g} s: at most {human_seconds(MAX_DURATION_S)} "
                             f"({MAX_DURATION_S:.0f} s), {DURATION_WHY}")
        return duration


class StepProfile(_Profile):
    """Each step's rate for its duration in turn, then the last rate held."""

    kind: Literal["step"] = "step"
    steps: list[Step] = Field(min_length=1)

    def expected(self, t: float) -> float:
        if t <= 0:
            return 0.0
        total = start = 0.0
        for step in self.steps:
            if t < start + step.duration:
                return total + step.rate * (t - start)
            total += step.rate * step.duration
            start += step.duration
        return total + self.steps[-1].rate * (t - start)

    def rate_at(self, t: float) -> float:
        if t < 0:
            return 0.0
        start = 0.0
        for step in self.steps:
            start += step.duration
            if t < start:
                return step.rate
        return self.steps[-1].rate


class SpikeProfile(_Profile):
    """``base_rate``, except ``peak_rate`` during ``[at, at + duration)``."""

    kind: Literal["spike"] = "spike"
    base_rate: Rate
    peak_rate: Rate
    at: Seconds = Field(ge=0)
    duration: Seconds = Field(gt=0)

    def expected(self, t: float) -> float:
        if t <= 0:
            return 0.0
        in_spike = min(max(t - self.at, 0.0), self.duration)
        return self.base_rate * t + (self.peak_rate - self.base_rate) * in_spike

    def rate_at(self, t: float) -> float:
        if t < 0:
            return 0.0
        return self.peak_rate if self.at <= t < self.at + self.duration else self.base_rate


class BurstProfile(_Profile):
    """``count`` events at once at t=0 (a start-up storm), then ``then_rate`` per second.

    With ``then_rate`` 0 it is finished as soon as it started: the storm is all there is.
    """

    kind: Literal["burst"] = "burst"
    count: int = Field(ge=1)
    then_rate: Rate = 0.0

    @field_validator("count")
    @classmethod
    def _count_bounded(cls, count: int) -> int:
        if count > MAX_BURST:
            raise OutOfBounds(f"a burst of {count} events: at most {MAX_BURST}, {BURST_WHY}")
        return count

    def expected(self, t: float) -> float:
        if t < 0:
            return 0.0
        return self.count + self.then_rate * t

    def rate_at(self, t: float) -> float:
        # The storm is an impulse at t=0: it has no rate, only a count (see expected).
        return 0.0 if t < 0 else self.then_rate

    def finished(self, t: float) -> bool:
        return self.then_rate == 0 and t >= 0


class SoakProfile(_Profile):
    """``rate`` for ``duration`` seconds, swung by ``rate * wobble * sin(2 pi t / period)``."""

    kind: Literal["soak"] = "soak"
    rate: Rate
    duration: Seconds = Field(gt=0)
    wobble: float = Field(0.0, ge=0, le=0.5)
    period: Seconds = Field(600.0, gt=0)

    def expected(self, t: float) -> float:
        if t <= 0:
            return 0.0
        t = min(t, self.duration)
        w = 2 * math.pi / self.period
        return self.rate * (t + self.wobble * (1 - math.cos(w * t)) / w)

    def rate_at(self, t: float) -> float:
        if t < 0 or t >= self.duration:
            return 0.0
        return self.rate * (1 + self.wobble * math.sin(2 * math.pi * t / self.period))

    def finished(self, t: float) -> bool:
        return t >= self.duration


class ReplayProfile(_Profile):
    """A recording fired again with its own timing, ``speed`` times faster, optionally looped.

    The timeline (see :class:`ReplayTimeline`) is scanned on first use, not at validation, so a
    scenario naming a 10 GB recording loads instantly; build the :class:`ReplaySource` early
    (it scans in its constructor) to get a malformed file reported before the run starts.
    """

    kind: Literal["replay"] = "replay"
    path: Path
    speed: float = Field(1.0, gt=0, le=MAX_REPLAY_SPEED)
    loop: bool = False
    _timeline: ReplayTimeline | None = PrivateAttr(None)

    @field_validator("path")
    @classmethod
    def _must_exist(cls, path: Path) -> Path:
        if not path.exists():
            raise ValueError(f"replay file '{path}' does not exist")
        if not path.is_file():
            raise ValueError(f"replay file '{path}' is not a file")
        return path

    def __eq__(self, other: object) -> bool:
        # pydantic compares private attributes too: a profile whose timeline was scanned would
        # differ from the same profile fresh from the scenario file.
        if not isinstance(other, ReplayProfile):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = _Profile.__hash__  # defining __eq__ would otherwise drop the frozen model's hash

    def timeline(self) -> ReplayTimeline:
        """The recording's timeline, scanned once and shared by copies of this profile."""
        if self._timeline is None:
            self._timeline = ReplayTimeline.scan(self.path)
        return self._timeline

    def expected(self, t: float) -> float:
        if t < 0:
            return 0.0
        return float(self.timeline().events_until(t * self.speed, loop=self.loop))

    def rate_at(self, t: float) -> float:
        # A recording has no instantaneous rate: report what fires in the coming second.
        return self.expected(t + 1.0) - self.expected(t)

    def finished(self, t: float) -> bool:
        return not self.loop and self.expected(t) >= len(self.timeline())


LoadProfile = Annotated[
    Union[
        ConstantProfile,
        RampProfile,
        StepProfile,
        SpikeProfile,
        BurstProfile,
        SoakProfile,
        ReplayProfile,
    ],
    Field(discriminator="kind"),
]
_PROFILE_ADAPTER: TypeAdapter[Any] = TypeAdapter(LoadProfile)

# ------------------------------------------------------------------------ profiles from strings

_FORMS = {
    "constant": "'20/s' or 'constant:20/s:DURATION'",
    "ramp": "'ramp:START..END:DURATION' like 'ramp:10/s..200/s:1m'",
    "step": "'step:RATE*DURATION,...' like 'step:10/s*30,100/s*30'",
    "spike": "'spike:BASE,PEAK@AT+DURATION' like 'spike:20/s,500/s@30+10'",
    "burst": "'burst:COUNT[,then=RATE]' like 'burst:5000,then=20/s'",
    "soak": "'soak:RATE:DURATION[,wobble=F][,period=DURATION]' like 'soak:50/s:1h'",
    "replay": "'replay:PATH[@SPEEDx][,loop]' like 'replay:path.jsonl@2x'",
}
_ALL_FORMS = "; ".join(_FORMS.values())


def parse_profile(data: dict[str, Any] | str | _Profile) -> LoadProfile:
    """A profile from a mapping (YAML/JSON; ``kind`` defaults to constant) or a CLI string."""
    if isinstance(data, _Profile):
        return data
    if isinstance(data, dict):
        # ConstantProfile's kind has a default, but a discriminated union needs the tag present.
        return _PROFILE_ADAPTER.validate_python({"kind": "constant", **data})
    if isinstance(data, str):
        return _parse_profile_text(data)
    raise ValueError(
        f"profile {data!r}: expected a mapping or a string; accepted forms: {_ALL_FORMS}"
    )


def _reason(exc: ValueError) -> str:
    """The useful part of a (pydantic) error, without pydantic's headline and URL."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            msg = str(err["msg"]).removeprefix("Value error, ")
            loc = ".".join(str(p) for p in err["loc"])
            parts.append(f"{loc}: {msg}" if loc else msg)
        return "; ".join(parts)
    return str(exc)


def _parse_profile_text(text: str) -> LoadProfile:
    s = text.strip()
    head, sep, rest = s.partition(":")
    kind = head.strip().lower() if sep else "constant"
    if kind not in _FORMS:
        raise ValueError(f"profile {text!r}: unknown kind {head!r}; accepted forms: {_ALL_FORMS}")
    try:
        if not sep:
            return ConstantProfile(rate=s)
        return _TEXT_PARSERS[kind](rest.strip())
    except ValueError as exc:
        if _out_of_bounds(exc):  # the shape was right: the forms would not help
            raise ValueError(f"profile {text!r}: {_reason(exc)}") from None
        forms = _ALL_FORMS if not sep else _FORMS[kind]
        raise ValueError(f"profile {text!r}: {_reason(exc)}; accepted forms: {forms}") from None


def _out_of_bounds(exc: ValueError) -> bool:
    if isinstance(exc, ValidationError):
        return all(isinstance(err.get("ctx", {}).get("error"), OutOfBounds)
                   for err in exc.errors())
    return isinstance(exc, OutOfBounds)


def _bad_shape() -> ValueError:
    return ValueError("not in the expected shape")


def _options(parts: list[str], allowed: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in allowed:
            raise ValueError(f"unknown option {part.strip()!r}")
        out[key] = value.strip()
    return out


def _text_constant(rest: str) -> ConstantProfile:
    rate, _, duration = rest.partition(":")
    return ConstantProfile(rate=rate, duration=duration or None)


def _text_ramp(rest: str) -> RampProfile:
    m = re.fullmatch(r"(.+?)\.\.([^:]+):(.+)", rest)
    if m is None:
        raise _bad_shape()
    return RampProfile(start_rate=m[1], end_rate=m[2], duration=m[3])


def _text_step(rest: str) -> StepProfile:
    steps = []
    for part in rest.split(","):
        rate, star, duration = part.partition("*")
        if not star:
            raise _bad_shape()
        steps.append({"rate": rate, "duration": duration})
    return StepProfile(steps=steps)


def _text_spike(rest: str) -> SpikeProfile:
    m = re.fullmatch(r"([^,]+),([^@]+)@([^+]+)\+(.+)", rest)
    if m is None:
        raise _bad_shape()
    return SpikeProfile(base_rate=m[1], peak_rate=m[2], at=m[3], duration=m[4])


def _text_burst(rest: str) -> BurstProfile:
    count, *opts = rest.split(",")
    then = _options(opts, {"then"}).get("then", 0.0)
    return BurstProfile(count=count.strip(), then_rate=then)


def _text_soak(rest: str) -> SoakProfile:
    head, *opts = rest.split(",")
    rate, colon, duration = head.partition(":")
    if not colon:
        raise _bad_shape()
    return SoakProfile(rate=rate, duration=duration, **_options(opts, {"wobble", "period"}))


def _text_replay(rest: str) -> ReplayProfile:
    loop = rest.endswith(",loop")
    path = rest.removesuffix(",loop")
    speed: str | float = 1.0
    m = re.fullmatch(r"(.+)@([0-9.eE+-]+)x", path)
    if m is not None:
        path, speed = m[1], m[2]
    if not path:
        raise _bad_shape()
    return ReplayProfile(path=path, speed=speed, loop=loop)


_TEXT_PARSERS: dict[str, Callable[[str], LoadProfile]] = {
    "constant": _text_constant,
    "ramp": _text_ramp,
    "step": _text_step,
    "spike": _text_spike,
    "burst": _text_burst,
    "soak": _text_soak,
    "replay": _text_replay,
}

# -------------------------------------------------------------------------------------- pacer


def _floor(x: float) -> int:
    # Clock differences carry float error: (100.1 - 100.0) * 10 is 0.99999999999994; without
    # the nudge that event would be a tick late and hand-computed counts off by one.
    return math.floor(x + 1e-9 * max(1.0, abs(x)))


class Pacer:
    """Turns a schedule into 'fire N events now' with exact cumulative rate control.

    At time ``now`` it is due ``floor(target) - fired``, where ``target`` is what the schedules
    so far add up to. Lateness is caught up; a paused span is not. Call it from one thread.
    """

    def __init__(self, profile: Schedule, now: float) -> None:
        self._profile = profile
        self._origin = now  # when the current profile's t=0 was
        self._offset = 0.0  # target carried over from earlier profiles, minus paused spans
        self._fired = 0
        self._frozen: float | None = None  # the target at pause time, while paused
        self._listeners: list[Callable[[], None]] = []  # run_pacer's wake-ups

    @property
    def profile(self) -> Schedule:
        return self._profile

    @property
    def total_fired(self) -> int:
        return self._fired

    @property
    def paused(self) -> bool:
        return self._frozen is not None

    def _target(self, now: float) -> float:
        return self._offset + self._profile.expected(now - self._origin)

    def due(self, now: float) -> int:
        """How many events to fire now (0 while paused)."""
        if self._frozen is not None:
            return 0
        return max(0, _floor(self._target(now)) - self._fired)

    def fired(self, n: int) -> None:
        """Record that ``n`` events were fired."""
        if n < 0:
            raise ValueError(f"fired({n}): expected a count >= 0")
        self._fired += n

    def next_due(self, now: float, horizon: float, count: int = 1) -> float | None:
        """The earliest time (to 0.1 ms, never early) when ``count`` more events are due, if
        it is within ``horizon`` seconds of ``now``; None otherwise or while paused."""
        if self._frozen is not None:
            return None
        need = self._fired + max(1, count)
        if _floor(self._target(now)) >= need:
            return now
        lo, hi = now, now + horizon
        if _floor(self._target(hi)) < need:
            return None
        # Bisection needs only a non-decreasing expected(), so any Schedule works.
        while hi - lo > 1e-4:
            mid = (lo + hi) / 2
            if _floor(self._target(mid)) >= need:
                hi = mid
            else:
                lo = mid
        return hi

    def set_profile(self, profile: Schedule, now: float) -> None:
        """Switch to ``profile``, whose t=0 is ``now``; what was due at ``now`` stays due."""
        carried = self._frozen if self._frozen is not None else self._target(now)
        self._profile, self._origin, self._offset = profile, now, carried
        if self._frozen is not None:
            # A burst set while paused is owed at resume; the new profile's paused span is not.
            self._frozen = self._target(now)
        self._notify()

    def pause(self, now: float) -> None:
        """Fire nothing until :meth:`resume`. The profile's clock keeps running meanwhile."""
        if self._frozen is None:
            self._frozen = self._target(now)

    def resume(self, now: float) -> None:
        """Carry on from where the pause left the count: the paused span is forgiven."""
        if self._frozen is None:
            return
        self._offset -= self._target(now) - self._frozen
        self._frozen = None
        self._notify()

    def over(self, now: float) -> bool:
        """The profile will make nothing more due (what is due may still wait to be fired)."""
        return self._profile.finished(now - self._origin)

    def next_over(self, now: float, horizon: float) -> float | None:
        """The earliest time (to 0.1 ms, never early) when the profile is over, if within
        ``horizon`` seconds of ``now``; None otherwise or while paused."""
        if self._frozen is not None:
            return None
        lo, hi = now, now + horizon
        if self.over(lo):
            return lo
        if not self.over(hi):
            return None
        while hi - lo > 1e-4:  # a profile that is over stays over
            mid = (lo + hi) / 2
            if self.over(mid):
                hi = mid
            else:
                lo = mid
        return hi

    def finished(self, now: float) -> bool:
        """The profile is over and nothing is left to fire."""
        return self.over(now) and self.due(now) == 0

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()


FireResult = int | Sized | None


async def run_pacer(
    pacer: Pacer,
    fire: Callable[[int], Awaitable[FireResult] | FireResult],
    *,
    tick: float = 0.002,
    max_chunk: int = 1000,
    clock: Callable[[], float] = time.monotonic,
    stop: asyncio.Event | None = None,
    max_sleep: float = 1.0,
    batch: Callable[[], int] | None = None,
) -> None:
    """Fire what ``pacer`` says is due, in chunks of at most ``max_chunk``, until it is
    finished or ``stop`` is set.

    ``fire(k)`` may fire fewer than ``k`` events and say so (an int, or the list of what it
    fired; None means all ``k``): a source that fires a cause's changes together fires only
    whole causes. ``batch()`` is then how many events the source needs due before it can fire
    again (the next cause's size), so the pacer sleeps until then instead of asking in vain.
    Every event fired is counted, so the rate stays exact over time.

    Between looks it sleeps ``tick``, or longer when the next event is further off (at most
    ``max_sleep``), so low rates cost no CPU; ``set_profile``, ``resume`` and ``stop`` wake it.
    """
    if tick <= 0 or max_sleep < tick or max_chunk < 1:
        raise ValueError("run_pacer: expected tick > 0, max_sleep >= tick and max_chunk >= 1")
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] | None = None

    def wake() -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wake_on_stop(event: asyncio.Event) -> None:
        await event.wait()
        wake()

    pacer._listeners.append(wake)
    watcher = loop.create_task(wake_on_stop(stop)) if stop is not None else None
    try:
        while stop is None or not stop.is_set():
            n = pacer.due(clock())
            while n > 0:
                k = min(n, max_chunk)
                result = fire(k)
                if inspect.isawaitable(result):
                    result = await result
                done = k if result is None else result if isinstance(result, int) \
                    else len(result)
                pacer.fired(done)
                n -= done
                if done == 0:  # the next cause is bigger than what is due: wait for it
                    break
                if n > 0:
                    # A storm of thousands must not starve the server's readers and pings.
                    await asyncio.sleep(0)
                    if stop is not None and stop.is_set():
                        return
            now = clock()
            if pacer.finished(now):
                return
            need = max(1, batch()) if batch is not None else 1
            if pacer.due(now + tick) >= need:
                delay = tick  # the common case at high rates: skip the bisection
            else:
                at = pacer.next_due(now, max_sleep, need)
                if need > 1 and pacer.due(now + max_sleep) > 0:
                    # What is due but smaller than the next cause goes once the profile is
                    # over (then nothing more comes due and the source fires exactly).
                    over = pacer.next_over(now, max_sleep)
                    if over is not None:
                        at = over if at is None else min(at, over)
                delay = max_sleep if at is None else min(max(at - now, tick), max_sleep)
            waiter = loop.create_future()
            handle = loop.call_later(delay, wake)
            try:
                await waiter
            finally:
                handle.cancel()
                waiter = None
    finally:
        pacer._listeners.remove(wake)
        if watcher is not None:
            watcher.cancel()


# ------------------------------------------------------------------------------------- replay

_LINE_HINT = (
    'expected a Home Assistant event object ({"event_type": ..., "data": ..., "time_fired": ...}),'
    ' an event frame ({"type": "event", "event": {...}, "id": N}) or a JSON array of those'
)
_STATE_CHANGED_HINT = (
    "expected a state_changed event with data.entity_id, data.old_state, data.new_state"
    " (objects or null) and an ISO time_fired with an offset"
)
_STAMPS = ("last_changed", "last_updated", "last_reported")
_FRESH_IDS_KEPT = 10_000  # recorded context ids remembered by a replay (see ReplaySource)


def _event_of(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    if "event_type" in item:
        return item
    event = item.get("event")
    if item.get("type") == "event" and isinstance(event, dict) and "event_type" in event:
        return event
    return None


def _state_changed(path: Path, lineno: int, raw: bytes) -> Iterator[tuple[dict[str, Any], int]]:
    """The line's state_changed events with their recorded time_fired (ns); others skipped."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            obj = json.loads(raw)  # orjson refuses integers beyond 64 bits; json does not
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {_LINE_HINT} (not JSON: {exc})") from None
    items = obj if isinstance(obj, list) else [obj]
    # A raw websocket capture also holds results, pongs and auth messages: skip them.
    items = [i for i in items if not (isinstance(i, dict) and "event_type" not in i
                                      and isinstance(i.get("type"), str) and i["type"] != "event")]
    events = [_event_of(item) for item in items]
    if any(event is None for event in events):
        raise ValueError(f"{path}:{lineno}: {_LINE_HINT}")
    for event in events:
        assert event is not None
        if event["event_type"] != "state_changed":
            continue
        data = event.get("data")
        fired = event.get("time_fired")
        if not (
            isinstance(data, dict)
            and isinstance(data.get("entity_id"), str)
            and isinstance(data.get("old_state", None), dict | None)
            and isinstance(data.get("new_state", None), dict | None)
            and isinstance(fired, str)
        ):
            raise ValueError(f"{path}:{lineno}: {_STATE_CHANGED_HINT}")
        try:
            fired_ns = ns_from_iso(fired)
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {_STATE_CHANGED_HINT} ({exc})") from None
        yield event, fired_ns


def _recorded(path: Path) -> Iterator[tuple[dict[str, Any], int]]:
    """Stream a recording's state_changed events, one line at a time."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if raw.strip():
                yield from _state_changed(path, lineno, raw)


@dataclass(frozen=True, slots=True)
class ReplayTimeline:
    """When each recorded state_changed event fired: seconds since the first, in file order.

    8 bytes per event, so millions of events are fine. An event recorded earlier than its
    predecessor is due together with it: the schedule must not run backwards.
    """

    path: Path
    offsets: array  # array('d'), non-decreasing

    @classmethod
    def scan(cls, path: Path) -> ReplayTimeline:
        offsets = array("d")
        first: int | None = None
        last = 0.0
        for _, fired_ns in _recorded(path):
            if first is None:
                first = fired_ns
            last = max(last, (fired_ns - first) / 1e9)
            offsets.append(last)
        if not offsets:
            raise ValueError(f"{path}: no state_changed events to replay")
        return cls(path, offsets)

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def period(self) -> float:
        """One loop's length: the recording's span plus its mean gap, so a loop's last and
        the next loop's first event are spaced like the rest (1 s if all are simultaneous)."""
        n, span = len(self.offsets), self.offsets[-1]
        return span * n / (n - 1) if n > 1 and span > 0 else 1.0

    def events_until(self, t: float, *, loop: bool) -> int:
        """Events due by ``t`` seconds of recording time."""
        if t < 0:
            return 0
        if not loop:
            return bisect.bisect_right(self.offsets, t)
        cycles = math.floor(t / self.period)
        rest = t - cycles * self.period
        return cycles * len(self.offsets) + bisect.bisect_right(self.offsets, rest)


@dataclass(slots=True)
class _Fired:
    """What was emitted for an entity last, so its next old_state can match it."""

    recorded_key: tuple[Any, ...]
    new_state: dict[str, Any]
    stamps: dict[int, str] = field(default_factory=dict)  # recorded ns -> emitted ISO


def _state_key(state: dict[str, Any]) -> tuple[Any, ...]:
    context = state.get("context")
    context_id = context.get("id") if isinstance(context, dict) else None
    return (state.get("state"), state.get("last_updated"), context_id)


def _ns_or_none(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return ns_from_iso(value)
    except ValueError:
        return None


class ReplaySource:
    """Events from a recorded JSONL file, re-stamped so they can be fired again.

    It is the replay's :class:`Schedule` too (delegating to the profile), and reads the file
    lazily; only the timeline is held in memory.
    """

    def __init__(self, profile: ReplayProfile, rng: random.Random) -> None:
        self.profile = profile
        self._rng = rng
        self._timeline = profile.timeline()  # scan now: a malformed file fails here, not mid-run
        self._events: Iterator[tuple[dict[str, Any], int]] | None = None
        self._last: dict[str, _Fired] = {}
        # Recorded context id -> the fresh one it was replaced by: events that shared a
        # context in the recording (one service call, one automation run) share it again, and
        # a parent_id still names its parent. Contexts are shared by events close together,
        # so the most recent ids are enough.
        self._fresh: OrderedDict[str, str] = OrderedDict()
        self.emitted = 0

    def group_left(self) -> int:
        """A recording's events are fired one at a time (their contexts are the recording's)."""
        return 1

    def expected(self, t: float) -> float:
        return self.profile.expected(t)

    def rate_at(self, t: float) -> float:
        return self.profile.rate_at(t)

    def finished(self, t: float) -> bool:
        return self.profile.finished(t)

    def close(self) -> None:
        """Close the recording (it is reopened if :meth:`next_change` is called again)."""
        if self._events is not None:
            self._events.close()  # type: ignore[attr-defined]
            self._events = None

    def next_change(self, now_ns: int) -> StateChange:
        """The next recorded event fired at ``now_ns``: EOFError once a non-looping file is done.

        time_fired, the state timestamps that equaled it, and context ids become ``now_ns``
        and fresh ULIDs (one per recorded id, so the recording's shared contexts and parents
        stay as recorded); entity, states and attributes are kept.
        """
        if self._events is None:
            self._events = _recorded(self.profile.path)
        try:
            event, recorded_ns = next(self._events)
        except StopIteration:
            if not self.profile.loop:
                raise EOFError(f"{self.profile.path}: all {self.emitted} events replayed") from None
            self._last.clear()  # a recording's end does not lead into its start
            self._fresh.clear()  # and a new pass is new causes: new contexts
            self._events = _recorded(self.profile.path)
            event, recorded_ns = next(self._events)  # the timeline scan proved there is one
        self.emitted += 1
        return self._restamp(event, recorded_ns, now_ns)

    def _restamp(self, event: dict[str, Any], recorded_ns: int, now_ns: int) -> StateChange:
        data = event["data"]
        entity_id: str = data["entity_id"]
        old_state: dict[str, Any] | None = data.get("old_state")
        new_state: dict[str, Any] | None = data.get("new_state")
        previous = self._last.get(entity_id)
        stamps = {recorded_ns: iso_from_ns(now_ns)}
        if previous is not None:
            # A last_changed that equaled an earlier event's time follows that event's re-stamp,
            # so an attribute-only change still has last_changed == old_state's last_changed.
            stamps = {**previous.stamps, **stamps}

        context_id = self._renew(event.get("context"), now_ns)
        if old_state is not None:
            if previous is not None and _state_key(old_state) == previous.recorded_key:
                # The recorded old_state is the entity's previous new_state: hand back what was
                # fired for it, so the replayed chain old -> new stays intact.
                old_state = previous.new_state
            else:
                self._restamp_times(old_state, stamps)
        if new_state is not None:
            recorded_key = _state_key(new_state)
            used = self._restamp_times(new_state, stamps)
            context = new_state.get("context")
            if isinstance(context, dict):
                context["id"] = self._renew(context, now_ns)
                parent = context.get("parent_id")
                if isinstance(parent, str):
                    context["parent_id"] = self._fresh_id(parent, now_ns)
            # Only the new state's own stamps carry on: the memory per entity stays bounded.
            self._last[entity_id] = _Fired(recorded_key, new_state, used)
        else:
            self._last.pop(entity_id, None)
        return StateChange(entity_id, old_state, new_state, context_id, now_ns)

    def _renew(self, context: Any, now_ns: int) -> str:
        """The fresh id of a recorded context (a new one when it has none)."""
        old = context.get("id") if isinstance(context, dict) else None
        if not isinstance(old, str):
            return ulid(now_ns, self._rng)
        return self._fresh_id(old, now_ns)

    def _fresh_id(self, old: str, now_ns: int) -> str:
        fresh = self._fresh
        new = fresh.get(old)
        if new is None:
            new = fresh[old] = ulid(now_ns, self._rng)
            if len(fresh) > _FRESH_IDS_KEPT:
                fresh.popitem(last=False)
        else:
            fresh.move_to_end(old)
        return new

    @staticmethod
    def _restamp_times(state: dict[str, Any], stamps: dict[int, str]) -> dict[int, str]:
        """Re-stamp ``state`` in place; return the mappings it used."""
        used: dict[int, str] = {}
        for key in _STAMPS:
            ns = _ns_or_none(state.get(key))
            if ns is not None and ns in stamps:
                state[key] = used[ns] = stamps[ns]
        return used
