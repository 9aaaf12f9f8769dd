"""A chaos schedule: which faults, when and for how long, drawn from a seed.

A chaos run is a compact migration (foundation, parallel run with shadow writes, traffic
10/25/50/75/90/100 %, cleanup with legacy stopped) whose migration part lasts ``duration``
real seconds, with faults from the scenario vocabulary (harness/scenario/faults.py) drawn over
that span. The same seed, duration, runtime and vocabulary always give the same schedule.

Only faults the pipeline is *meant* to survive are drawn, each where it is meant to survive
it. The new pipeline holds what it cannot deliver in durable queues and reads what it missed
from Home Assistant back from its history, so its own services (ingestion's kill -9
included), hops and the weather API may fail at any time. The monolith keeps its real
weaknesses (an in-memory buffer it drops after a few failed writes; Home Assistant never
replays what a disconnected client missed), so a fault that hurts a path legacy still owns
is drawn only where legacy owns nothing that the fault could take from it:

- ``any``: the whole migration (new services, ingestion's connection to Home Assistant, new
  hops, latency anywhere, weather);
- ``legacy_owns_all``: the parallel run, before the first traffic step, when legacy owns
  every event and stays subscribed;
- ``new_owns_all``: from the 100 % step on, when legacy owns nothing: InfluxDB, legacy's own
  hops and Home Assistant itself (a restart, dropped clients) may fail;
- ``new_only``: after legacy is stopped.

Every fault ends (``for``, or its own length for a restart) a recovery margin before the end
of the migration, so a run tests recovery too; the runner heals whatever is left regardless.

In the scenario the faults become ``fault`` steps, each anchored at the start of the phase
its ``at`` falls in (``at`` then counts from the moment the step is reached): the start-up
before the first phase and the time a step such as ``stop: legacy`` takes shift nothing.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import ScheduleError
from harness.scenario.faults import YamlFault
from harness.scenario.model import Scenario
from harness.scenario.topology import CHAOS_START_ORDER

from .timeline import (
    ANY,
    LEGACY_OWNS_ALL,
    MIN_DURATION,
    NEW_ONLY,
    NEW_OWNS_ALL,
    TRAFFIC_STEPS,
    WINDOWS,
    Timeline,
)
from .vocabulary import (
    DEFAULT_VOCABULARY,
    EXTRA_VOCABULARY,
    FAULT,
    OPTIONS,
    RUNTIME_LACKS,
    VOCABULARY,
    Option,
    option_of,
    overlap,
    resolve_vocabulary,
    span,
    target_of,
    targets,
    usable_options,
    with_changes,
)

# The timeline's and the vocabulary's names are offered here too: a schedule is where
# callers meet them.
__all__ = ["ANY", "CHAOS_SLOS", "DEFAULT_VOCABULARY", "EXTRA_VOCABULARY", "FAULT",
           "LEGACY_OWNS_ALL", "MIN_DURATION", "NEW_ONLY", "NEW_OWNS_ALL", "OPTIONS",
           "RUNTIME_LACKS", "TRAFFIC_STEPS", "VOCABULARY", "WINDOWS", "Option", "Schedule",
           "ScheduleError", "ScheduledFault", "Timeline", "admissible", "default_fault_count",
           "draw_schedule", "option_of", "problems", "resolve_vocabulary", "scenario_document",
           "scenario_for", "scenario_name", "scenario_yaml", "span", "target_of", "targets",
           "with_changes"]


# -- schedules ---------------------------------------------------------------------------------


class ScheduledFault(BaseModel):
    """A fault of the schedule, with the number it was drawn under (kept through shrinking)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(ge=1)
    fault: YamlFault

    @property
    def at(self) -> float:
        return self.fault.at

    @property
    def for_(self) -> float | None:
        return self.fault.for_

    @property
    def ends(self) -> float:
        return round(self.fault.at + span(self.fault), 3)

    def describe(self) -> str:
        length = f" for {self.fault.for_:g} s" if self.fault.for_ is not None else ""
        return f"#{self.id} {self.fault.describe()} at {self.fault.at:g} s{length}"


class Schedule(BaseModel):
    """What ``cutover chaos`` draws, prints, runs, shrinks and saves (``--replay`` reads it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int | None = None  # None: written by hand
    duration_s: float = Field(ge=MIN_DURATION)
    runtime: str = "process"  # what it was drawn for
    vocabulary: list[str] = Field(default_factory=lambda: list(DEFAULT_VOCABULARY))
    faults: list[ScheduledFault] = Field(default_factory=list)

    @property
    def timeline(self) -> Timeline:
        return Timeline(self.duration_s)

    def key(self) -> str:
        """Identity of the faults (what an oracle's answer depends on)."""
        return json.dumps([f.fault.model_dump(mode="json", by_alias=True, exclude_none=True)
                           for f in self.faults], sort_keys=True)

    def without(self, ids: Iterable[int]) -> Schedule:
        drop = set(ids)
        return self.model_copy(update={"faults": [f for f in self.faults if f.id not in drop]})

    def replace(self, fault_id: int, fault: Any) -> Schedule:
        return self.model_copy(update={"faults": [
            ScheduledFault(id=f.id, fault=fault) if f.id == fault_id else f
            for f in self.faults]})

    def by_id(self, fault_id: int) -> ScheduledFault:
        return next(f for f in self.faults if f.id == fault_id)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True),
                          indent=2) + "\n"

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> Schedule:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ScheduleError(f"{path}: no such schedule file (cutover chaos writes "
                                "schedule.json and minimal.json beside its reports)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ScheduleError(f"{path}: cannot be read: {exc}") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ScheduleError(f"{path}: not a chaos schedule: {where}: {err['msg']}") from None


def admissible(fault: Any, timeline: Timeline) -> str | None:
    """None when the fault is one the chaos vocabulary draws, where it may be drawn; else why
    not, in words."""
    option = option_of(fault)
    if option is None:
        return f"{fault.describe()} is not in the chaos vocabulary"
    if option.for_range is None and fault.for_ is not None:
        return f"{fault.describe()} ends by itself; it takes no 'for'"
    if option.for_range is not None:
        if fault.for_ is None:
            return f"{fault.describe()} needs a 'for' (the chaos run heals every fault)"
        if fault.for_ < option.for_range[0] - 1e-9:
            return f"{fault.describe()} lasts {fault.for_:g} s, under {option.for_range[0]:g} s"
    start, end = fault.at, fault.at + span(fault)
    for name in option.windows:
        lo, hi = timeline.window(name)
        if lo - 1e-6 <= start and end <= hi + 1e-6:
            return None
    where = ", ".join(f"{w} {timeline.window(w)[0]:g}..{timeline.window(w)[1]:g} s"
                      for w in option.windows)
    return (f"{fault.describe()} at {start:g}..{end:g} s is outside where it is survivable "
            f"({where})")


def problems(schedule: Schedule, runtime: str | None = None) -> list[str]:
    """Everything that makes the schedule one the chaos run would not draw, in words."""
    out = []
    timeline = schedule.timeline
    lacks = RUNTIME_LACKS.get(runtime or schedule.runtime, frozenset())
    ids = [f.id for f in schedule.faults]
    if len(set(ids)) != len(ids):
        out.append(f"fault ids repeat: {ids}")
    for f in schedule.faults:
        if f.fault.kind in lacks:
            out.append(f"#{f.id} {f.fault.kind} cannot run on {runtime or schedule.runtime}")
        if (why := admissible(f.fault, timeline)) is not None:
            out.append(f"#{f.id} {why}")
    for i, a in enumerate(schedule.faults):
        for b in schedule.faults[i + 1:]:
            if overlap(a.fault, b.fault):
                both = ", ".join(sorted(targets(a.fault) & targets(b.fault)))
                out.append(f"#{a.id} and #{b.id} both act on {both} at once")
    return out


def default_fault_count(duration: float) -> int:
    """At most this many faults by default: about one per 8 s of migration."""
    return max(2, int(duration // 8))


def _attributes(kind: str, rng: random.Random) -> dict[str, Any]:
    """The kind's own settings, drawn within bounds the pipeline is meant to take."""
    if kind == "latency":
        latency = rng.randrange(50, 501, 10) / 1000
        out: dict[str, Any] = {"latency": latency,
                               "stream": rng.choice(("downstream", "upstream"))}
        if rng.random() < 0.5:
            out["jitter"] = rng.randrange(0, int(latency * 1000 // 2) + 1, 10) / 1000
        return out
    if kind == "ha_restart":
        return {"downtime": rng.randrange(5, 31) / 10}
    if kind == "ha_drop":
        return {"abort": rng.random() < 0.5}
    if kind == "weather_slow":
        return {"delay": rng.randrange(5, 31) / 10}
    if kind == "weather_errors":
        return {"error_rate": rng.choice((0.5, 1.0)), "status": rng.choice((500, 503))}
    if kind == "clock_skew":
        # Seconds to minutes either way: an NTP step, a VM resumed with a stale clock.
        return {"offset": f"{rng.choice('+-')}{rng.choice((5, 30, 120, 600))}s"}
    return {}


def draw_schedule(seed: int, duration: float, *, runtime: str = "process",
                  vocabulary: Iterable[str] | str | None = None,
                  faults: int | None = None,
                  there: Callable[[str], bool] | None = None) -> Schedule:
    """The schedule for ``seed``: the same arguments always give the same schedule.
    ``there``: whether a target is in the pipeline (``PipelineSpec.reaches``); nothing is
    drawn on one that is not."""
    if duration < MIN_DURATION:
        raise ScheduleError(f"--duration {duration:g}: at least {MIN_DURATION:g} s (the "
                            "migration needs room to fail and recover)")
    vocab = resolve_vocabulary(vocabulary, runtime)
    options = usable_options(there)
    if vocabulary is None:
        vocab = tuple(kind for kind in vocab if kind in options)
    elif targetless := [kind for kind in vocab if kind not in options]:
        raise ScheduleError(f"{', '.join(targetless)}: nothing this pipeline has to act on; "
                            "leave it out of --vocabulary")
    timeline = Timeline(duration)
    rng = random.Random(seed)
    cap = default_fault_count(duration)
    count = faults if faults is not None else rng.randint(max(1, math.ceil(cap / 2)), cap)
    if count < 0:
        raise ScheduleError(f"--faults {count}: expected 0 or more")
    chosen: list[Any] = []
    tries = 0
    while len(chosen) < count and tries < 100 * max(1, count):
        tries += 1
        kind = rng.choice(vocab)  # the kind first: latency's seven hops do not crowd others
        option = rng.choice(options[kind])
        window = rng.choice(option.windows)
        lo, hi = timeline.window(window)
        fields = {**option.fields, **_attributes(kind, rng)}
        if option.for_range is not None:
            shortest, longest = option.for_range
            longest = min(longest, hi - lo, 0.3 * duration)
            if longest < shortest:
                continue
            fields["for"] = round(rng.uniform(shortest, longest), 1)
        fields["at"] = 0.0
        probe = FAULT.validate_python(fields)
        if span(probe) > hi - lo:
            continue
        fields["at"] = round(rng.uniform(lo, hi - span(probe)), 1)
        fault = FAULT.validate_python(fields)
        if admissible(fault, timeline) is not None:
            continue  # rounding took it over an edge: draw again
        if any(overlap(c, fault) for c in chosen):
            continue  # one fault per target at a time
        chosen.append(fault)
    if len(chosen) < count:
        raise ScheduleError(f"could not place {count} faults of {', '.join(vocab)} in "
                            f"{duration:g} s without two on one target at once: ask for fewer "
                            "(--faults) or a longer --duration")
    chosen.sort(key=lambda f: (f.at, f.kind))
    return Schedule(seed=seed, duration_s=duration, runtime=runtime, vocabulary=list(vocab),
                    faults=[ScheduledFault(id=i, fault=f) for i, f in enumerate(chosen, 1)])


# -- the scenario ------------------------------------------------------------------------------

CHAOS_SLOS = ("loss == 0", "duplicated == 0", "inconsistent == 0")
ALL_SERVICES = list(CHAOS_START_ORDER)


def scenario_name(schedule: Schedule) -> str:
    return f"chaos-{schedule.seed}" if schedule.seed is not None else "chaos-replay"


def _fault_step(fault: Any, offset: float) -> dict[str, Any]:
    rest = fault.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data: dict[str, Any] = {"kind": fault.kind, "at": offset}
    if fault.for_ is not None:
        data["for"] = fault.for_
    data.update({k: v for k, v in rest.items() if k not in ("kind", "at", "for")})
    return {"fault": data}


def scenario_document(schedule: Schedule, *, load: str = "50/s",
                      entities: int = 200) -> dict[str, Any]:
    """The chaos migration as a scenario file would write it (``cutover run`` takes it)."""
    tl = schedule.timeline
    anchored: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in tl.anchors()}
    for f in schedule.faults:
        phase, offset = tl.anchor(f.at)
        anchored[phase].append(_fault_step(f.fault, offset))
    listing = "; ".join(f"{f.fault.describe()} at {f.at:g} s"
                        + (f" for {f.for_:g} s" if f.for_ is not None else "")
                        for f in schedule.faults) or "no fault"
    seed = schedule.seed if schedule.seed is not None else 1
    return {
        "name": scenario_name(schedule),
        "description": (f"Chaos run (seed {schedule.seed}): a compact migration of "
                        f"{schedule.duration_s:g} s with {len(schedule.faults)} fault(s), times "
                        f"from the start of the parallel run: {listing}."),
        "tags": ["chaos"],
        "time_scale": 1.0,
        "fleet": {"entities": entities, "seed": seed % 1_000_000},
        "load": load,
        "slos": list(CHAOS_SLOS),
        "phases": [
            {"name": "foundation", "steps": [{"start": ALL_SERVICES},
                                             {"wait_healthy": "all"}]},
            {"name": "parallel", "steps": [{"shadow": "on"}, *anchored["parallel"],
                                           {"hold": f"{tl.parallel:g}s"}]},
            {"name": "traffic_switch", "steps": [
                *anchored["traffic_switch"],
                {"traffic": {"steps": list(TRAFFIC_STEPS), "hold": f"{tl.step_hold:g}s"}}]},
            {"name": "cleanup", "steps": [{"shadow": "off"}, {"stop": "legacy"},
                                          *anchored["cleanup"],
                                          {"hold": f"{tl.cleanup:g}s"}]},
        ],
        "expect": {"verdict": "pass"},
    }


def scenario_yaml(schedule: Schedule, **kwargs: Any) -> str:
    # no stream given: safe_dump returns the document as a str
    return cast(str, yaml.safe_dump(scenario_document(schedule, **kwargs), sort_keys=False,
                                    allow_unicode=True, width=100, default_flow_style=None))


def scenario_for(schedule: Schedule, **kwargs: Any) -> Scenario:
    return Scenario.model_validate(scenario_document(schedule, **kwargs))
