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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from harness.scenario.faults import HOPS, YamlFault
from harness.scenario.model import Scenario

MIN_DURATION = 20.0  # seconds: below this the windows leave no room to fail and recover
TRAFFIC_STEPS = (10, 25, 50, 75, 90, 100)
_ROUTING_MARGIN = 2.0  # a routing change takes effect ~1 s after it is asked for (lead_ms)

FAULT = TypeAdapter(YamlFault)

ANY, LEGACY_OWNS_ALL, NEW_OWNS_ALL, NEW_ONLY = ("any", "legacy_owns_all", "new_owns_all",
                                                "new_only")
WINDOWS = (ANY, LEGACY_OWNS_ALL, NEW_OWNS_ALL, NEW_ONLY)


class ScheduleError(ValueError):
    """A vocabulary, duration or schedule file that cannot be used; the message says why."""


# -- the migration's timeline ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeline:
    """The chaos migration's plan in real seconds from the start of the parallel phase."""

    duration: float

    @property
    def parallel(self) -> float:
        return round(0.2 * self.duration, 1)

    @property
    def step_hold(self) -> float:
        return round(0.08 * self.duration, 1)

    @property
    def t_traffic(self) -> float:
        return self.parallel

    def t_step(self, percent: int) -> float:
        return round(self.t_traffic + TRAFFIC_STEPS.index(percent) * self.step_hold, 1)

    @property
    def t_cleanup(self) -> float:
        return round(self.t_traffic + len(TRAFFIC_STEPS) * self.step_hold, 1)

    @property
    def cleanup(self) -> float:
        return round(self.duration - self.t_cleanup, 1)

    @property
    def recover(self) -> float:
        """Every fault has ended this long before the end of the migration."""
        return max(2.0, round(0.08 * self.duration, 1))

    def window(self, name: str) -> tuple[float, float]:
        end = round(self.duration - self.recover, 1)
        return {
            ANY: (0.5, end),
            # ingestion must be back (and subscribed) before the 10 % step takes effect
            LEGACY_OWNS_ALL: (0.5, round(self.t_traffic - _ROUTING_MARGIN, 1)),
            NEW_OWNS_ALL: (round(self.t_step(100) + _ROUTING_MARGIN, 1), end),
            NEW_ONLY: (round(self.t_cleanup + _ROUTING_MARGIN, 1), end),
        }[name]

    def anchors(self) -> list[tuple[str, float]]:
        """The phases faults are anchored to, with their planned start."""
        return [("parallel", 0.0), ("traffic_switch", self.t_traffic),
                ("cleanup", self.t_cleanup)]

    def anchor(self, at: float) -> tuple[str, float]:
        """The phase ``at`` falls in and the offset from its start."""
        name, start = "parallel", 0.0
        for phase, t in self.anchors():
            if t <= at + 1e-9:
                name, start = phase, t
        return name, round(at - start, 3)

    def phase_at(self, t: float) -> str:
        """Where the migration stands at ``t``, in words, for the schedule table."""
        if t < self.t_traffic:
            return "parallel run"
        if t < self.t_cleanup:
            percent = TRAFFIC_STEPS[min(len(TRAFFIC_STEPS) - 1,
                                        int((t - self.t_traffic) // max(self.step_hold, 1e-9)))]
            return f"traffic {percent}%"
        return "cleanup (legacy stopped)"


# -- the vocabulary ----------------------------------------------------------------------------

# Ingestion recovers its gaps from history, so cutting it off is survivable anywhere.
_HA_CLIENT = (ANY,)
_SERVICE_WINDOWS = {"storage": (ANY,), "enrichment": (ANY,), "ingestion": _HA_CLIENT}
_DOWN_WINDOWS = {"ingestion-enrichment": (ANY,), "enrichment-storage": (ANY,),
                 "storage-influxdb": (ANY,), "enrichment-weather": (ANY,),
                 "ha-ingestion": _HA_CLIENT, "ha-legacy": (NEW_OWNS_ALL,),
                 "legacy-influxdb": (NEW_OWNS_ALL,)}
assert set(_DOWN_WINDOWS) == set(HOPS)
_HOP_ENDS = {hop: tuple(hop.split("-")) for hop in HOPS}  # the two ends, by name
_HOST_FAULT_SERVICES = ("storage", "enrichment")  # clock_skew and disk_full (see _options)


@dataclass(frozen=True, slots=True)
class Option:
    """One way a vocabulary kind can be drawn: its target and where it may go."""

    kind: str
    target: str  # what it acts on; one fault per target at a time
    windows: tuple[str, ...]
    for_range: tuple[float, float] | None  # None: it ends by itself (restart, ha_restart)
    fields: dict[str, Any]  # the fault's fixed fields (kind, service/hop)


def _options() -> dict[str, list[Option]]:
    opts: dict[str, list[Option]] = {}
    for svc, windows in _SERVICE_WINDOWS.items():
        opts.setdefault("kill", []).append(
            Option("kill", svc, windows, (1.0, 10.0), {"kind": "kill", "service": [svc]}))
        opts.setdefault("restart", []).append(
            Option("restart", svc, windows, None, {"kind": "restart", "service": [svc]}))
        # SIGSTOP keeps the websocket open: Home Assistant queues what it sends meanwhile
        # (well under its 1,024-message back-pressure limit for a few seconds at 50/s).
        opts.setdefault("pause", []).append(
            Option("pause", svc, (ANY,), (1.0, 6.0), {"kind": "pause", "service": [svc]}))
        opts.setdefault("stop", []).append(
            Option("stop", svc, windows, (1.0, 8.0), {"kind": "stop", "service": [svc]}))
        opts.setdefault("disconnect", []).append(
            Option("disconnect", svc, windows, (1.0, 8.0),
                   {"kind": "disconnect", "service": [svc]}))
    for hop in HOPS:
        opts.setdefault("latency", []).append(
            Option("latency", hop, (ANY,), (2.0, 10.0), {"kind": "latency", "hop": hop}))
        opts.setdefault("down", []).append(
            Option("down", hop, _DOWN_WINDOWS[hop], (1.0, 8.0), {"kind": "down", "hop": hop}))
    opts["influxdb_outage"] = [Option("influxdb_outage", "influxdb", (NEW_OWNS_ALL,),
                                      (1.0, 8.0), {"kind": "influxdb_outage"})]
    # Home Assistant's own faults cut legacy off too: only where legacy owns nothing.
    opts["ha_restart"] = [Option("ha_restart", "ha", (NEW_OWNS_ALL,), None,
                                 {"kind": "ha_restart"})]
    opts["ha_drop"] = [Option("ha_drop", "ha", (NEW_OWNS_ALL,), None, {"kind": "ha_drop"})]
    for kind in ("weather_slow", "weather_errors", "weather_down"):
        opts[kind] = [Option(kind, "weather", (ANY,), (2.0, 10.0), {"kind": kind})]
    # A skewed clock only moves the stamps of the new services that carry no routing decision
    # (enriched_at, stored_at: point time and ownership are time_fired); a full disk under
    # their durable queues is refused with back-pressure. Both anywhere. Not admin-api, whose
    # clock a routing boundary is announced on: behind, it holds every event of both
    # pipelines until it catches up (legacy's buffer is bounded); not legacy, which has no
    # queue to hold what a skewed health check makes it drop.
    for svc in _HOST_FAULT_SERVICES:
        opts.setdefault("clock_skew", []).append(
            Option("clock_skew", svc, (ANY,), (2.0, 10.0),
                   {"kind": "clock_skew", "service": [svc]}))
        opts.setdefault("disk_full", []).append(
            Option("disk_full", svc, (ANY,), (2.0, 10.0),
                   {"kind": "disk_full", "service": [svc]}))
    return opts


OPTIONS = _options()
# Drawn when --vocabulary is not given: what the pipeline is meant to survive.
DEFAULT_VOCABULARY = ("kill", "restart", "pause", "disconnect", "latency", "down",
                      "influxdb_outage", "ha_restart", "ha_drop", "weather_slow",
                      "weather_errors")
# Also survivable, drawn only when asked for by name. clock_skew and disk_full need the
# target started for them (libfaketime preloaded; a tmpfs, so root, on processes), which the
# default set must not ask of every machine; and a kind added to the default set would change
# the schedule every existing seed draws.
EXTRA_VOCABULARY = ("stop", "weather_down", "clock_skew", "disk_full")
VOCABULARY = (*DEFAULT_VOCABULARY, *EXTRA_VOCABULARY)
# What a runtime cannot do. Nothing today: every chaos run routes its hops through the fault
# proxy, and on processes a partition (``disconnect``) is every hop of the service going down.
RUNTIME_LACKS: dict[str, frozenset[str]] = {"process": frozenset(), "containers": frozenset()}

# How long a fault that ends by itself occupies its target (the restart and the reconnect).
_RESTART_S = 3.0
_RECONNECT_S = 2.0


def resolve_vocabulary(names: Iterable[str] | str | None, runtime: str) -> tuple[str, ...]:
    """The kinds to draw from: the default set for ``None``; a name the runtime cannot do is
    left out of the default and refused when asked for."""
    lacks = RUNTIME_LACKS.get(runtime, frozenset())
    if names is None:
        return tuple(k for k in DEFAULT_VOCABULARY if k not in lacks)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    chosen = tuple(dict.fromkeys(n for n in names if n))
    if not chosen:
        raise ScheduleError(f"the vocabulary is empty: name some of {', '.join(VOCABULARY)}")
    unknown = [n for n in chosen if n not in OPTIONS]
    if unknown:
        raise ScheduleError(f"unknown fault kind(s) {', '.join(unknown)}: the chaos vocabulary is "
                            f"{', '.join(DEFAULT_VOCABULARY)} (default) and "
                            f"{', '.join(EXTRA_VOCABULARY)}")
    missing = [n for n in chosen if n in lacks]
    if missing:
        raise ScheduleError(f"{', '.join(missing)} cannot run on --runtime {runtime} "
                            f"(use --runtime containers)")
    return chosen


# -- schedules ---------------------------------------------------------------------------------


def target_of(fault: Any) -> str:
    if hasattr(fault, "service"):
        return fault.service[0]
    if hasattr(fault, "hop"):
        return fault.hop
    if fault.kind == "influxdb_outage":
        return "influxdb"
    if fault.kind.startswith("ha_"):
        return "ha"
    if fault.kind.startswith("weather_"):
        return "weather"
    return fault.kind


def targets(fault: Any) -> frozenset[str]:
    """Everything the fault acts on: two faults on one thing must not overlap in time (a
    partition takes every hop of its service: a hop healed under it would half-heal it)."""
    if fault.kind == "disconnect":
        return frozenset({target_of(fault), *(hop for hop in HOPS
                                              if target_of(fault) in _HOP_ENDS[hop])})
    return frozenset({target_of(fault)})


def _overlap(a: Any, b: Any) -> bool:
    return bool(targets(a) & targets(b)) and a.at < b.at + span(b) and b.at < a.at + span(a)


def span(fault: Any) -> float:
    """How long the fault occupies its target, in seconds."""
    if fault.for_ is not None:
        return fault.for_
    if fault.kind == "ha_restart":
        return fault.downtime + _RECONNECT_S
    if fault.kind == "ha_drop":
        return _RECONNECT_S
    return _RESTART_S


def option_of(fault: Any) -> Option | None:
    target = target_of(fault)
    return next((o for o in OPTIONS.get(fault.kind, []) if o.target == target), None)


def with_changes(fault: Any, **changes: Any) -> Any:
    """A copy of ``fault`` with some fields changed (``for_`` for ``for``), validated again."""
    data = fault.model_dump(mode="json", by_alias=True, exclude_none=True)
    for key, value in changes.items():
        key = "for" if key == "for_" else key
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return FAULT.validate_python(data)


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
            if _overlap(a.fault, b.fault):
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
                  faults: int | None = None) -> Schedule:
    """The schedule for ``seed``: the same arguments always give the same schedule."""
    if duration < MIN_DURATION:
        raise ScheduleError(f"--duration {duration:g}: at least {MIN_DURATION:g} s (the "
                            "migration needs room to fail and recover)")
    vocab = resolve_vocabulary(vocabulary, runtime)
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
        option = rng.choice(OPTIONS[kind])
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
        if any(_overlap(c, fault) for c in chosen):
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
ALL_SERVICES = ["influxdb", "admin", "legacy", "weather", "storage", "enrichment", "ingestion"]


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
    return yaml.safe_dump(scenario_document(schedule, **kwargs), sort_keys=False,
                          allow_unicode=True, width=100, default_flow_style=None)


def scenario_for(schedule: Schedule, **kwargs: Any) -> Scenario:
    return Scenario.model_validate(scenario_document(schedule, **kwargs))
