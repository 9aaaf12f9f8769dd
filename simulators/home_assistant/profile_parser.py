"""A load profile from what a scenario file or the command line says.

A mapping (YAML/JSON) validates as the profile it names; a string is one of :data:`FORMS`
(``'20/s'``, ``'ramp:10/s..200/s:1m'``, ...). Errors name the accepted forms, except when
the shape was right and only a bound was crossed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from pydantic import ValidationError

from .limits import OutOfBounds
from .profiles import (
    PROFILE_ADAPTER,
    BurstProfile,
    ConstantProfile,
    LoadProfile,
    Profile,
    RampProfile,
    ReplayProfile,
    SoakProfile,
    SpikeProfile,
    StepProfile,
)

__all__ = ["FORMS", "parse_profile"]

FORMS = {
    "constant": "'20/s' or 'constant:20/s:DURATION'",
    "ramp": "'ramp:START..END:DURATION' like 'ramp:10/s..200/s:1m'",
    "step": "'step:RATE*DURATION,...' like 'step:10/s*30,100/s*30'",
    "spike": "'spike:BASE,PEAK@AT+DURATION' like 'spike:20/s,500/s@30+10'",
    "burst": "'burst:COUNT[,then=RATE]' like 'burst:5000,then=20/s'",
    "soak": "'soak:RATE:DURATION[,wobble=F][,period=DURATION]' like 'soak:50/s:1h'",
    "replay": "'replay:PATH[@SPEEDx][,loop]' like 'replay:path.jsonl@2x'",
}
_ALL_FORMS = "; ".join(FORMS.values())


def parse_profile(data: dict[str, Any] | str | Profile) -> LoadProfile:
    """A profile from a mapping (YAML/JSON; ``kind`` defaults to constant) or a CLI string."""
    if isinstance(data, Profile):
        return cast(LoadProfile, data)  # every Profile subclass is one of LoadProfile's
    if isinstance(data, dict):
        # ConstantProfile's kind has a default, but a discriminated union needs the tag present.
        return PROFILE_ADAPTER.validate_python({"kind": "constant", **data})
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
    if kind not in FORMS:
        raise ValueError(f"profile {text!r}: unknown kind {head!r}; accepted forms: {_ALL_FORMS}")
    try:
        if not sep:
            return ConstantProfile.model_validate({"rate": s})
        return _TEXT_PARSERS[kind](rest.strip())
    except ValueError as exc:
        if _out_of_bounds(exc):  # the shape was right: the forms would not help
            raise ValueError(f"profile {text!r}: {_reason(exc)}") from None
        forms = _ALL_FORMS if not sep else FORMS[kind]
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
    return ConstantProfile.model_validate({"rate": rate, "duration": duration or None})


def _text_ramp(rest: str) -> RampProfile:
    m = re.fullmatch(r"(.+?)\.\.([^:]+):(.+)", rest)
    if m is None:
        raise _bad_shape()
    return RampProfile.model_validate({"start_rate": m[1], "end_rate": m[2], "duration": m[3]})


def _text_step(rest: str) -> StepProfile:
    steps = []
    for part in rest.split(","):
        rate, star, duration = part.partition("*")
        if not star:
            raise _bad_shape()
        steps.append({"rate": rate, "duration": duration})
    return StepProfile.model_validate({"steps": steps})


def _text_spike(rest: str) -> SpikeProfile:
    m = re.fullmatch(r"([^,]+),([^@]+)@([^+]+)\+(.+)", rest)
    if m is None:
        raise _bad_shape()
    return SpikeProfile.model_validate({"base_rate": m[1], "peak_rate": m[2], "at": m[3],
                                        "duration": m[4]})


def _text_burst(rest: str) -> BurstProfile:
    count, *opts = rest.split(",")
    then = _options(opts, {"then"}).get("then", 0.0)
    return BurstProfile.model_validate({"count": count.strip(), "then_rate": then})


def _text_soak(rest: str) -> SoakProfile:
    head, *opts = rest.split(",")
    rate, colon, duration = head.partition(":")
    if not colon:
        raise _bad_shape()
    return SoakProfile.model_validate({"rate": rate, "duration": duration,
                                       **_options(opts, {"wobble", "period"})})


def _text_replay(rest: str) -> ReplayProfile:
    loop = rest.endswith(",loop")
    path = rest.removesuffix(",loop")
    speed: str | float = 1.0
    m = re.fullmatch(r"(.+)@([0-9.eE+-]+)x", path)
    if m is not None:
        path, speed = m[1], m[2]
    if not path:
        raise _bad_shape()
    return ReplayProfile.model_validate({"path": path, "speed": speed, "loop": loop})


_TEXT_PARSERS: dict[str, Callable[[str], LoadProfile]] = {
    "constant": _text_constant,
    "ramp": _text_ramp,
    "step": _text_step,
    "spike": _text_spike,
    "burst": _text_burst,
    "soak": _text_soak,
    "replay": _text_replay,
}
