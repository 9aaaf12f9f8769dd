"""What a scenario file says, as pydantic models.

A scenario is the migration plan written down: phases of steps (start services, turn the
shadow on, step the traffic, hold, check), the SLOs in k6's spirit, the rollback triggers and
steps, and what the run is expected to conclude. Durations are written in the plan's own time
("5m") and multiplied by the time scale, so the seed's 5-minute holds take seconds in CI and
``--time-scale 1`` rehearses them for real.

Steps are one-key mappings in YAML (``- hold: 5m``, ``- start: [storage, enrichment]``); each
is turned into a typed step with a ``kind`` before validation, so the JSON Schema and the
error messages speak of the same names the file uses.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo,
                      field_validator, model_validator)

from harness.scenario.durations import Duration, parse_duration  # noqa: F401 (re-exported)
from harness.scenario.faults import YamlFault
from simulators.home_assistant.fleet import FleetSpec
from simulators.home_assistant.limits import MAX_TIME_SCALE, MIN_TIME_SCALE
from simulators.home_assistant.load import LoadProfile, parse_profile

SERVICES = ("influxdb", "legacy", "ingestion", "enrichment", "storage", "admin", "weather")
NEW_SERVICES = ("storage", "enrichment", "ingestion", "admin")
Service = Literal["influxdb", "legacy", "ingestion", "enrichment", "storage", "admin", "weather"]
Runtime = Literal["process", "containers"]




class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- thresholds (k6 style) -----------------------------------------------------------------

_THRESHOLD = re.compile(
    r"^\s*(?P<metric>p\((?P<pct>\d+(?:\.\d+)?)\)|error_rate|loss|lost|duplicated|inconsistent|"
    r"availability|throughput|perf_drop)\s*(?P<op><=|>=|==|<|>)\s*"
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|%|/s)?\s*$")


class Threshold(_Model):
    """``p(95) < 100ms``, ``error_rate < 0.1%``, ``loss == 0``, ``availability >= 99.9%``,
    ``throughput >= 10/s``, ``perf_drop > 20%``, ``inconsistent > 0``."""

    metric: str  # "p95", "error_rate", "loss", "availability", "throughput", ...
    op: Literal["<", "<=", ">", ">=", "=="]
    value: float  # seconds for latency, a fraction for %, events/s for throughput
    text: str

    @classmethod
    def parse(cls, text: str) -> Threshold:
        m = _THRESHOLD.match(text)
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
        return cls(metric=metric, op=m["op"], value=value, text=text.strip())

    def holds(self, measured: float) -> bool:
        return {"<": measured < self.value, "<=": measured <= self.value,
                ">": measured > self.value, ">=": measured >= self.value,
                "==": measured == self.value}[self.op]


def _threshold(value: Any) -> Any:
    return Threshold.parse(value) if isinstance(value, str) else value


ThresholdSpec = Annotated[Threshold, BeforeValidator(_threshold)]


# -- steps ------------------------------------------------------------------------------------


def _services(value: Any) -> Any:
    if value == "all":
        return list(SERVICES)
    if value == "new":
        return list(NEW_SERVICES)
    return [value] if isinstance(value, str) else value


ServiceList = Annotated[list[Service], BeforeValidator(_services), Field(min_length=1)]


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
    Union[ServiceStep, WaitHealthyStep, ShadowStep, TrafficStep, HoldStep, CheckStep, LoadStep,
          RollbackStep, FaultStep],
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


# -- triggers and expectations -------------------------------------------------------------

TriggerName = Literal["error_rate", "perf_drop", "loss", "service_unavailable", "inconsistent"]


class Trigger(_Model):
    """A rollback trigger, evaluated continuously while traffic is being switched."""

    name: TriggerName
    threshold: ThresholdSpec | None = None  # e.g. error_rate > 1%; None for service_unavailable
    services: list[Service] = Field(default_factory=list)  # service_unavailable: which ones
    window: Duration = 10.0  # real seconds of evidence the trigger looks at
    for_: Duration = Field(default=0.0, alias="for")  # how long it must hold before firing

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_DEFAULT_THRESHOLDS = {"error_rate": "error_rate > 1%", "perf_drop": "perf_drop > 20%",
                       "loss": "loss > 0", "inconsistent": "inconsistent > 0"}


def _known_trigger(name: Any) -> None:
    """One message for a misspelt trigger (not a second one about its threshold)."""
    names = get_args(TriggerName)
    if name in names:
        return
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown trigger {name!r}{hint}: expected one of {', '.join(names)}")


def trigger_from_yaml(raw: Any) -> Any:
    """``"error_rate > 1%"``, ``{service_unavailable: [ingestion]}`` or a full mapping."""
    if isinstance(raw, str):
        name = raw.split()[0] if raw.split() else raw
        _known_trigger(name)
        if name == "service_unavailable":
            return {"name": name}
        if name in _DEFAULT_THRESHOLDS and raw.strip() == name:
            return {"name": name, "threshold": _DEFAULT_THRESHOLDS[name]}
        return {"name": name, "threshold": raw}
    if isinstance(raw, dict) and "name" in raw:
        _known_trigger(raw["name"])
    if isinstance(raw, dict) and "name" not in raw and len(raw) >= 1:
        name = next(iter(raw))
        _known_trigger(name)
        value = raw[name]
        rest = {k: v for k, v in raw.items() if k != name}
        if name == "service_unavailable":
            return {"name": name, "services": _services(value) or [], **rest}
        return {"name": name, "threshold": value if isinstance(value, str) and value.split()[0]
                == name else f"{name} {value}", **rest}
    return raw


YamlTrigger = Annotated[Trigger, BeforeValidator(trigger_from_yaml)]


class Expectation(_Model):
    """What the run must conclude for the scenario to pass (negative scenarios expect a rollback)."""

    verdict: Literal["pass", "fail"] = "pass"
    rollback: Literal["triggered", "not_triggered"] = "not_triggered"
    # which trigger must have fired ("gate": a traffic step's gate failed)
    reason: TriggerName | Literal["gate"] | None = None


class Scenario(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    runtimes: list[Runtime] = Field(default_factory=lambda: ["process", "containers"])
    # limits.py: below the minimum a hold is a blink no monitor tick sees
    time_scale: float = Field(default=1.0, ge=MIN_TIME_SCALE, le=MAX_TIME_SCALE)
    fleet: FleetSpec = Field(default_factory=FleetSpec)
    load: LoadProfile = Field(default_factory=lambda: parse_profile("20/s"))
    slos: list[ThresholdSpec] = Field(default_factory=lambda: [
        Threshold.parse("p(95) < 100ms"), Threshold.parse("error_rate < 0.1%"),
        Threshold.parse("loss == 0")])
    triggers: list[YamlTrigger] = Field(default_factory=list)
    rollback: list[YamlStep] = Field(default_factory=list)
    # faults on a clock (``at`` from when the load starts) or tied to a traffic step
    faults: list[YamlFault] = Field(default_factory=list)
    phases: list[Phase] = Field(min_length=1)
    expect: Expectation = Field(default_factory=Expectation)

    @field_validator("load", mode="before")
    @classmethod
    def _load(cls, value: Any) -> Any:
        return parse_profile(value)

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> Scenario:
        # The plan as a whole (harness/scenario/coherence.py). A caller that passes
        # context={"plan_findings": []} gets every finding, with where it is, instead of the
        # first error raised (the loader, to name each one's line).
        from harness.scenario.coherence import plan_findings

        findings = plan_findings(self)
        sink = info.context.get("plan_findings") if isinstance(info.context, dict) else None
        if isinstance(sink, list):
            sink.extend(findings)
            return self
        for finding in findings:
            if finding.severity == "error":
                raise ValueError(finding.message)
        return self

    def scaled(self, seconds: float, time_scale: float | None = None) -> float:
        """A plan duration in real seconds under the run's time scale."""
        return seconds * (self.time_scale if time_scale is None else time_scale)
