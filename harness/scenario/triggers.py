"""The rollback triggers of a scenario file and what its run is expected to conclude.

A trigger is evaluated continuously while traffic is being switched (harness/runner/triggers.py
on a real run, simulators/des on a simulated one); the expectation says whether the run must
pass, roll back, and on which trigger. Apart from harness/scenario/model.py for the same
reason as the steps (harness/scenario/steps.py): the plan's checks name them.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, ConfigDict, Field

from harness.scenario.durations import Duration
from harness.scenario.steps import ThresholdSpec, _Model, services_from_yaml
from harness.scenario.topology import Service

__all__ = ["Expectation", "Trigger", "TriggerName", "YamlTrigger", "trigger_from_yaml"]

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
            return {"name": name, "services": services_from_yaml(value) or [], **rest}
        return {"name": name, "threshold": value if isinstance(value, str) and value.split()[0]
                == name else f"{name} {value}", **rest}
    return raw


YamlTrigger = Annotated[Trigger, BeforeValidator(trigger_from_yaml)]


class Expectation(_Model):
    # The docstring is the JSON Schema's description (`cutover schema`): one line, as it was.
    """What the run must conclude for the scenario to pass (negative scenarios expect a rollback)."""  # noqa: E501

    verdict: Literal["pass", "fail"] = "pass"
    rollback: Literal["triggered", "not_triggered"] = "not_triggered"
    # which trigger must have fired ("gate": a traffic step's gate failed)
    reason: TriggerName | Literal["gate"] | None = None
