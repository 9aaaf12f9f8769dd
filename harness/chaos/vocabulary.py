"""The chaos vocabulary: which fault kinds may be drawn, on which targets, in which windows
of the timeline, for how long; and what a fault acts on (one fault per target at a time)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from pydantic import TypeAdapter

from harness.errors import ScheduleError
from harness.scenario.faults import YamlFault
from harness.scenario.topology import HOP_ENDS, HOPS, NEW_PATH, QueueService

from .timeline import ANY, NEW_OWNS_ALL

__all__ = ["DEFAULT_VOCABULARY", "EXTRA_VOCABULARY", "FAULT", "OPTIONS", "RUNTIME_LACKS",
           "VOCABULARY", "Option", "option_of", "resolve_vocabulary", "span", "target_of",
           "usable_options",
           "targets", "with_changes"]

FAULT = TypeAdapter(YamlFault)

# Ingestion recovers its gaps from history, so cutting it off is survivable anywhere.
_HA_CLIENT = (ANY,)
# The new path's services, downstream first (the order their options are drawn from).
_SERVICE_WINDOWS = {"storage": (ANY,), "enrichment": (ANY,), "ingestion": _HA_CLIENT}
assert tuple(_SERVICE_WINDOWS) == tuple(reversed(NEW_PATH))
_DOWN_WINDOWS = {"ingestion-enrichment": (ANY,), "enrichment-storage": (ANY,),
                 "storage-influxdb": (ANY,), "enrichment-weather": (ANY,),
                 "ha-ingestion": _HA_CLIENT, "ha-legacy": (NEW_OWNS_ALL,),
                 "legacy-influxdb": (NEW_OWNS_ALL,)}
assert set(_DOWN_WINDOWS) == set(HOPS)
# clock_skew and disk_full (see _options)
_HOST_FAULT_SERVICES: tuple[QueueService, ...] = ("storage", "enrichment")


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


def usable_options(there: Callable[[str], bool] | None = None) -> dict[str, list[Option]]:
    """The options whose every target ``there`` accepts: a plan without a role (a pipeline
    file leaving out enrichment) draws no fault on it, nor on a hop with it at one end."""
    if there is None:
        return OPTIONS

    def fits(option: Option) -> bool:
        return all(there(end) for end in HOP_ENDS.get(option.target, (option.target,)))  # type: ignore[call-overload]

    usable = {kind: [o for o in options if fits(o)] for kind, options in OPTIONS.items()}
    return {kind: options for kind, options in usable.items() if options}


def target_of(fault: Any) -> str:
    if hasattr(fault, "service"):
        return cast(str, fault.service[0])
    if hasattr(fault, "hop"):
        return cast(str, fault.hop)
    if fault.kind == "influxdb_outage":
        return "influxdb"
    if fault.kind.startswith("ha_"):
        return "ha"
    if fault.kind.startswith("weather_"):
        return "weather"
    return cast(str, fault.kind)


def targets(fault: Any) -> frozenset[str]:
    """Everything the fault acts on: two faults on one thing must not overlap in time (a
    partition takes every hop of its service: a hop healed under it would half-heal it)."""
    if fault.kind == "disconnect":
        return frozenset({target_of(fault), *(hop for hop in HOPS
                                              if target_of(fault) in HOP_ENDS[hop])})
    return frozenset({target_of(fault)})


def overlap(a: Any, b: Any) -> bool:
    return bool(targets(a) & targets(b)) and a.at < b.at + span(b) and b.at < a.at + span(a)


def span(fault: Any) -> float:
    """How long the fault occupies its target, in seconds."""
    if fault.for_ is not None:
        return cast(float, fault.for_)
    if fault.kind == "ha_restart":
        return cast(float, fault.downtime + _RECONNECT_S)
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
