"""The fault vocabulary of scenario files: what can go wrong, where, when and for how long.

One ``fault`` step names one fault by ``kind``. Network faults are Toxiproxy's toxics placed on
a hop of the topology (``enrichment-storage``...); process faults act on a service (SIGKILL,
SIGSTOP, docker disconnect...); the outside world's faults act on the fake Home Assistant or the
weather API; ``influxdb_outage`` stops the database; ``rogue_writer`` is a second writer
overwriting stored points with wrong values (the evidence an ``inconsistent`` trigger needs);
``clock_skew`` sets a service's wall clock off by an offset and ``disk_full`` fills the small
disk its data directory is on (both in harness/scenario/host_faults.py).

Timing, in plan time (scaled like holds): ``at`` delays the fault from the moment its step is
reached (or, in the scenario's ``faults:`` list, from the moment the load starts) without
blocking the steps after it; ``for`` heals it after that long (a killed service is started
again, a toxic removed, a paused one resumed); ``during: traffic 50`` (scenario list only)
injects it while the traffic step at 50% holds and heals it when the step ends.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from harness.scenario.durations import Duration
from harness.scenario.fault_base import _Timed, one_or_many
from harness.scenario.host_faults import ClockSkew, DiskFull
from harness.scenario.topology import FaultTarget, Hop
from simulators.home_assistant.limits import MAX_TOXIC_BYTES, MAX_TOXIC_RATE_KBS

TOXICS = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data",
          "down")
SERVICE_FAULTS = ("kill", "stop", "pause", "restart", "disconnect")
HA_FAULTS = ("ha_drop", "ha_restart", "ha_stall", "ha_revoke_token", "ha_malformed",
             "ha_refuse")
WEATHER_FAULTS = ("weather_slow", "weather_errors", "weather_down")
HOST_FAULTS = ("clock_skew", "disk_full")
FAULT_KINDS = (*TOXICS, *SERVICE_FAULTS, *HA_FAULTS, *WEATHER_FAULTS, "influxdb_outage",
               "rogue_writer", *HOST_FAULTS)

#: what a service fault may name (harness/scenario/topology.py)
FaultService = FaultTarget


class ToxicFault(_Timed):
    """A Toxiproxy toxic on one hop, in one direction (``down`` disables the hop's proxy)."""

    kind: Literal["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                  "limit_data", "down"]
    hop: Hop
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    latency: Duration | None = None  # latency
    jitter: Duration | None = None  # latency
    rate: Annotated[int, Field(ge=0, le=MAX_TOXIC_RATE_KBS)] | None = None  # bandwidth, KB/s
    delay: Duration | None = None  # slow_close; slicer (between slices)
    timeout: Duration | None = None  # timeout, reset_peer (0 = never close / at once)
    bytes: Annotated[int, Field(ge=0, le=MAX_TOXIC_BYTES)] | None = None  # limit_data
    average_size: Annotated[int, Field(ge=1, le=MAX_TOXIC_BYTES)] | None = None  # slicer
    size_variation: Annotated[int, Field(ge=0, le=MAX_TOXIC_BYTES)] | None = None  # slicer

    _NEEDS = {"latency": ("latency",), "bandwidth": ("rate",), "limit_data": ("bytes",)}
    _ALLOWED = {"latency": {"latency", "jitter"}, "bandwidth": {"rate"},
                "slow_close": {"delay"}, "timeout": {"timeout"}, "reset_peer": {"timeout"},
                "slicer": {"average_size", "size_variation", "delay"},
                "limit_data": {"bytes"}, "down": set()}
    _ATTRS = ("latency", "jitter", "rate", "delay", "timeout", "bytes", "average_size",
              "size_variation")

    @model_validator(mode="after")
    def _attributes_fit(self) -> ToxicFault:
        given = {a for a in self._ATTRS if getattr(self, a) is not None}
        allowed = self._ALLOWED[self.kind]
        if given - allowed:
            raise ValueError(f"a {self.kind} fault takes {sorted(allowed) or 'no attributes'}; "
                             f"remove {sorted(given - allowed)}")
        missing = [a for a in self._NEEDS.get(self.kind, ()) if getattr(self, a) is None]
        if missing:
            raise ValueError(f"a {self.kind} fault needs {', '.join(missing)} "
                             f"(e.g. {_EXAMPLES[self.kind]})")
        return self

    def attributes(self) -> dict[str, int]:
        """Toxiproxy's attribute names and units (milliseconds, KB/s, bytes, microseconds)."""
        ms = {k: round(getattr(self, k) * 1000) for k in ("latency", "jitter", "timeout")
              if getattr(self, k) is not None}
        out: dict[str, int] = dict(ms)
        if self.rate is not None:
            out["rate"] = self.rate
        if self.bytes is not None:
            out["bytes"] = self.bytes
        if self.kind == "slow_close" and self.delay is not None:
            out["delay"] = round(self.delay * 1000)
        if self.kind == "slicer":
            out["average_size"] = self.average_size or 64
            out["size_variation"] = self.size_variation or 0
            out["delay"] = round((self.delay or 0.0) * 1e6)  # microseconds, as Toxiproxy
        if self.kind == "timeout":
            out.setdefault("timeout", 0)
        if self.kind == "reset_peer":
            out.setdefault("timeout", 0)
        return out

    def describe(self) -> str:
        attrs = ", ".join(f"{k}={v}" for k, v in self.attributes().items())
        where = f"{self.hop} {self.stream}" if self.kind != "down" else self.hop
        tox = f", toxicity {self.toxicity:g}" if self.toxicity < 1 else ""
        return f"{self.kind} on {where}" + (f" ({attrs}{tox})" if attrs or tox else "")


_EXAMPLES = {"latency": "latency: 200ms", "bandwidth": "rate: 10  # KB/s",
             "limit_data": "bytes: 1000"}


class ServiceFault(_Timed):
    """kill (SIGKILL / docker kill), stop (graceful), pause (SIGSTOP / docker pause), restart,
    disconnect (cut off the network: docker disconnect, or every proxy hop of the service)."""

    kind: Literal["kill", "stop", "pause", "restart", "disconnect"]
    service: Annotated[list[FaultService], BeforeValidator(one_or_many), Field(min_length=1)]

    def describe(self) -> str:
        return f"{self.kind} {', '.join(self.service)}"


class HomeAssistantFault(_Timed):
    """The fake Home Assistant's own faults: drop every connection (``abort``: no close
    frame), restart (``downtime`` without listening), stall (stop sending), revoke the token,
    send a malformed frame, refuse new connections."""

    kind: Literal["ha_drop", "ha_restart", "ha_stall", "ha_revoke_token", "ha_malformed",
                  "ha_refuse"]
    abort: bool = False  # ha_drop
    downtime: Duration = 0.0  # ha_restart
    frame: str = "truncated"  # ha_malformed: a kind of simulators.home_assistant MALFORMED_FRAMES

    def describe(self) -> str:
        extra = {"ha_drop": " (abort)" if self.abort else "",
                 "ha_restart": f" (down {self.downtime:g} s)" if self.downtime else "",
                 "ha_malformed": f" ({self.frame})"}.get(self.kind, "")
        return f"{self.kind}{extra}"


class WeatherFault(_Timed):
    """The weather API answers slowly, with errors, or not at all."""

    kind: Literal["weather_slow", "weather_errors", "weather_down"]
    delay: Duration = 2.0  # weather_slow
    error_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0  # weather_errors
    status: Annotated[int, Field(ge=400, le=599)] = 503  # weather_errors

    def describe(self) -> str:
        return {"weather_slow": f"weather_slow ({self.delay:g} s per call)",
                "weather_errors": f"weather_errors ({self.error_rate:.0%} HTTP {self.status})",
                "weather_down": "weather_down"}[self.kind]


class InfluxOutage(_Timed):
    """InfluxDB stops (gracefully) and, after ``for``, starts again."""

    kind: Literal["influxdb_outage"]

    def describe(self) -> str:
        return "influxdb_outage"


class RogueWriter(_Timed):
    """A second writer (a forgotten monolith instance, a bad backfill) overwrites the
    ``points`` most recently stored production points with a state nobody sent."""

    kind: Literal["rogue_writer"]
    points: Annotated[int, Field(ge=1, le=10_000)] = 5

    def describe(self) -> str:
        return f"rogue_writer ({self.points} point(s) overwritten)"


Fault = Annotated[
    ToxicFault | ServiceFault | HomeAssistantFault | WeatherFault | InfluxOutage | RogueWriter
    | ClockSkew | DiskFull,
    Field(discriminator="kind"),
]


def fault_from_yaml(raw: Any) -> Any:
    """A friendly error for an unknown ``kind`` before the union's own."""
    if isinstance(raw, dict) and "kind" in raw and raw["kind"] not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {raw['kind']!r}: expected one of "
                         f"{', '.join(FAULT_KINDS)}")
    if isinstance(raw, dict) and "kind" not in raw:
        raise ValueError(f"a fault needs a kind, one of {', '.join(FAULT_KINDS)}; "
                         f"got keys {sorted(raw)}")
    return raw


YamlFault = Annotated[Fault, BeforeValidator(fault_from_yaml)]

_DURING = re.compile(r"^traffic\s+(\d{1,3})$")


def during_percent(fault: Fault) -> int | None:
    """The traffic percentage a ``during: traffic N`` fault is tied to, or None."""
    if fault.during is None:
        return None
    m = _DURING.match(fault.during)
    return int(m.group(1)) if m else None


def heals(fault: Fault) -> bool:
    """Whether the fault has an end the injector must bring about."""
    return fault.for_ is not None or fault.during is not None
