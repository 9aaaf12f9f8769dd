"""The steps of a scenario's phases, as pydantic models, and the thresholds they (and the
SLOs, gates and triggers) are written in.

Steps are one-key mappings in YAML (``- hold: 5m``, ``- start: [storage, enrichment]``); each
is turned into a typed step with a ``kind`` before validation, so the JSON Schema and the
error messages speak of the same names the file uses. Apart from harness/scenario/model.py
so that the plan's checks (harness/scenario/coherence.py), which the model runs, can name the
steps without importing the model.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from harness.scenario.durations import Duration
from harness.scenario.faults import YamlFault
from harness.scenario.topology import NEW_START_ORDER, SERVICES, Service
from simulators.home_assistant.load import LoadProfile, parse_profile

__all__ = ["STEP_KEYS", "THRESHOLD_PATTERN", "CheckStep", "FaultStep", "HoldStep",
           "LoadStep", "Phase", "RollbackStep", "ServiceList", "ServiceStep", "ShadowStep",
           "Step", "Threshold", "ThresholdSpec", "TrafficStep", "WaitHealthyStep", "YamlStep",
           "services_from_yaml", "step_from_yaml", "threshold_from_yaml"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- thresholds (k6 style) -----------------------------------------------------------------

_Op = Literal["<", "<=", ">", ">=", "=="]

THRESHOLD_PATTERN = re.compile(
    r"^\s*(?P<metric>p\((?P<pct>\d+(?:\.\d+)?)\)|error_rate|loss|lost|duplicated|inconsistent|"
    r"availability|throughput|perf_drop)\s*(?P<op><=|>=|==|<|>)\s*"
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|%|/s)?\s*$")


class Threshold(_Model):
    """``p(95) < 100ms``, ``error_rate < 0.1%``, ``loss == 0``, ``availability >= 99.9%``,
    ``throughput >= 10/s``, ``perf_drop > 20%``, ``inconsistent > 0``."""

    metric: str  # "p95", "error_rate", "loss", "availability", "throughput", ...
    op: _Op
    value: float  # seconds for latency, a fraction for %, events/s for throughput
    text: str

    @classmethod
    def parse(cls, text: str) -> Threshold:
        m = THRESHOLD_PATTERN.match(text)
        if not m:
            raise ValueError(
                f"threshold {text!r}: expected e.g. 'p(95) < 100ms', 'error_rate < 0.1%', "
                "'loss == 0', 'availability >= 99.9%', 'throughput >= 10/s', 'perf_drop > 20%'")
        metric = m["metric"]
        value, unit = float(m["value"]), m["unit"]
        if metric.startswith("p("):
            metric = "p" + format(float(m["pct"]), "g")  # p(95) -> "p95", p(99.9) -> "p99.9"
            if unit not in ("ms", "s"):
                raise ValueError(f"threshold {text!r}: a latency needs a unit, 'ms' or 's'")
            value = value / 1000 if unit == "ms" else value
        elif unit == "%":
            value /= 100
        elif metric in ("error_rate", "availability", "perf_drop") and unit is None:
            raise ValueError(f"threshold {text!r}: give {metric} as a percentage, e.g. 1%")
        if metric == "lost":
            metric = "loss"
        op = cast(_Op, m["op"])  # THRESHOLD_PATTERN's op group matches only these
        return cls(metric=metric, op=op, value=value, text=text.strip())

    def holds(self, measured: float) -> bool:
        return {"<": measured < self.value, "<=": measured <= self.value,
                ">": measured > self.value, ">=": measured >= self.value,
                "==": measured == self.value}[self.op]


def threshold_from_yaml(value: Any) -> Any:
    return Threshold.parse(value) if isinstance(value, str) else value


ThresholdSpec = Annotated[Threshold, BeforeValidator(threshold_from_yaml)]


# -- steps ------------------------------------------------------------------------------------


def services_from_yaml(value: Any) -> Any:
    if value == "all":
        return list(SERVICES)
    if value == "new":
        return list(NEW_START_ORDER)
    return [value] if isinstance(value, str) else value


ServiceList = Annotated[list[Service], BeforeValidator(services_from_yaml), Field(min_length=1)]


class ServiceStep(_Model):
    """Start, stop (graceful), kill (-9), pause (SIGSTOP), resume or restart services."""

    kind: Literal["start", "stop", "kill", "pause", "resume", "restart"]
    services: ServiceList


class WaitHealthyStep(_Model):
    kind: Literal["wait_healthy"] = "wait_healthy"
    services: ServiceList
    timeout: Duration = 60.0  # real seconds: not scaled (it is how long a service may take)


class ShadowStep(_Model):
    kind: Literal["shadow"] = "shadow"
    enabled: bool


class TrafficStep(_Model):
    """Step the share of events the new pipeline owns, holding each step behind a gate."""

    kind: Literal["traffic"] = "traffic"
    steps: list[Annotated[int, Field(ge=0, le=100)]] = Field(min_length=1)
    hold: Duration = 300.0
    gate: list[ThresholdSpec] = Field(default_factory=list)


class HoldStep(_Model):
    kind: Literal["hold"] = "hold"
    duration: Duration


class CheckStep(_Model):
    """Check the run so far: ``consistency`` (shadow vs production vs ledger), ``loss``, ``slo``."""

    kind: Literal["check"] = "check"
    checks: list[Literal["consistency", "loss", "slo"]] = Field(min_length=1)


class LoadStep(_Model):
    """Change the load profile from here on."""

    kind: Literal["load"] = "load"
    profile: LoadProfile


class RollbackStep(_Model):
    """Route everything back to legacy (new_percent 0 at the next boundary)."""

    kind: Literal["rollback"] = "rollback"
    reason: str = "scenario step"


class FaultStep(_Model):
    """Inject a fault (see harness/scenario/faults.py); never blocks the steps after it."""

    kind: Literal["fault"] = "fault"
    fault: YamlFault


Step = Annotated[
    ServiceStep | WaitHealthyStep | ShadowStep | TrafficStep | HoldStep | CheckStep | LoadStep
    | RollbackStep | FaultStep,
    Field(discriminator="kind"),
]

_SERVICE_KINDS = ("start", "stop", "kill", "pause", "resume", "restart")
STEP_KEYS = (*_SERVICE_KINDS, "wait_healthy", "shadow", "traffic", "hold", "check", "load",
             "rollback", "fault")


def step_from_yaml(raw: Any) -> Any:
    """``{"hold": "5m"}`` -> ``{"kind": "hold", "duration": "5m"}`` (and so on for each kind)."""
    if not isinstance(raw, dict) or "kind" in raw:
        return raw
    keys = [k for k in raw if k in STEP_KEYS]
    if len(keys) != 1:
        raise ValueError(f"a step is one of {', '.join(STEP_KEYS)} (one per list item); "
                         f"got keys {sorted(raw)}")
    kind = keys[0]
    value = raw[kind]
    rest = {k: v for k, v in raw.items() if k != kind}
    if kind in _SERVICE_KINDS:
        return {"kind": kind, "services": value, **rest}
    if kind == "wait_healthy":
        return {"kind": kind, "services": value, **rest}
    if kind == "shadow":
        enabled = {"on": True, "off": False}.get(value, value) if isinstance(value, str) else value
        return {"kind": kind, "enabled": enabled, **rest}
    if kind == "traffic":
        if isinstance(value, dict):
            return {"kind": kind, **value, **rest}
        return {"kind": kind, "steps": value if isinstance(value, list) else [value], **rest}
    if kind == "hold":
        return {"kind": kind, "duration": value, **rest}
    if kind == "check":
        return {"kind": kind, "checks": [value] if isinstance(value, str) else value, **rest}
    if kind == "load":
        return {"kind": kind, "profile": parse_profile(value), **rest}
    if kind == "rollback":
        return {"kind": kind, **({"reason": value} if isinstance(value, str) else {}), **rest}
    if kind == "fault":
        if rest:
            raise ValueError(f"put the fault's settings inside its mapping: "
                             f"- fault: {{kind: ..., {', '.join(sorted(rest))}: ...}}")
        return {"kind": kind, "fault": value}
    raise AssertionError(kind)


YamlStep = Annotated[Step, BeforeValidator(step_from_yaml)]


class Phase(_Model):
    name: str
    description: str = ""
    load: LoadProfile | None = None  # the load for this phase; None keeps the current one
    steps: list[YamlStep] = Field(default_factory=list)

    @field_validator("load", mode="before")
    @classmethod
    def _load(cls, value: Any) -> Any:
        return None if value is None else parse_profile(value)
