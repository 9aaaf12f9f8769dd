"""The load profiles: a rate over time, each knowing exactly how many events are due by ``t``.

Every profile is a :class:`~.pacer.Schedule` the pacer drives; :data:`LoadProfile` is the
discriminated union a scenario's ``load:`` validates into.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    field_validator,
    model_validator,
)

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
from .rates import Rate, Seconds
from .recording import ReplayTimeline

__all__ = [
    "PROFILE_ADAPTER",
    "BurstProfile",
    "ConstantProfile",
    "LoadProfile",
    "Profile",
    "RampProfile",
    "ReplayProfile",
    "SoakProfile",
    "SpikeProfile",
    "Step",
    "StepProfile",
]


class Profile(BaseModel):
    """The base of every load profile: its common checks, and what it must answer."""

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
        del t  # at no t: a rate held forever never runs out
        return False

    @model_validator(mode="after")
    def _within_bounds(self) -> Profile:
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


class ConstantProfile(Profile):
    """``rate`` events per second, for ``duration`` seconds or (None) forever."""

    kind: Literal["constant"] = "constant"
    rate: Rate
    duration: Seconds | None = Field(default=None, gt=0)

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


class RampProfile(Profile):
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


class StepProfile(Profile):
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


class SpikeProfile(Profile):
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


class BurstProfile(Profile):
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


class SoakProfile(Profile):
    """``rate`` for ``duration`` seconds, swung by ``rate * wobble * sin(2 pi t / period)``."""

    kind: Literal["soak"] = "soak"
    rate: Rate
    duration: Seconds = Field(gt=0)
    wobble: float = Field(default=0.0, ge=0, le=0.5)
    period: Seconds = Field(default=600.0, gt=0)

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


class ReplayProfile(Profile):
    """A recording fired again with its own timing, ``speed`` times faster, optionally looped.

    The timeline (see :class:`ReplayTimeline`) is scanned on first use, not at validation, so a
    scenario naming a 10 GB recording loads instantly; build the
    :class:`~.replay.ReplaySource` early (it scans in its constructor) to get a malformed file
    reported before the run starts.
    """

    kind: Literal["replay"] = "replay"
    path: Path
    speed: float = Field(default=1.0, gt=0, le=MAX_REPLAY_SPEED)
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

    __hash__ = Profile.__hash__  # defining __eq__ would otherwise drop the frozen model's hash

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
    (
        ConstantProfile
        | RampProfile
        | StepProfile
        | SpikeProfile
        | BurstProfile
        | SoakProfile
        | ReplayProfile
    ),
    Field(discriminator="kind"),
]
PROFILE_ADAPTER: TypeAdapter[LoadProfile] = TypeAdapter(LoadProfile)
