"""Which runtime a run uses: what was asked for, what the scenario allows, what exists here."""

from __future__ import annotations

from pathlib import Path

from harness.scenario.model import Scenario

from .base import Runtime, Wiring
from .process import ProcessRuntime


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot run here or cannot run this scenario; the message says why."""


def choose_runtime(requested: str, scenario: Scenario) -> str:
    if requested == "auto":
        # The containers runtime is not built yet: processes are what this checkout runs.
        chosen = "process"
    elif requested in ("process", "containers"):
        chosen = requested
    else:
        raise RuntimeUnavailable(f"runtime {requested!r}: expected auto, process or containers")
    if chosen == "containers":
        raise RuntimeUnavailable("the containers runtime is not available in this version: "
                                 "use --runtime process (or auto)")
    if chosen not in scenario.runtimes:
        raise RuntimeUnavailable(f"scenario {scenario.name} runs on {', '.join(scenario.runtimes)}"
                                 f", not on {chosen}")
    return chosen


def make_runtime(name: str, wiring: Wiring) -> Runtime:
    if name == "process":
        return ProcessRuntime(wiring)
    raise RuntimeUnavailable(f"runtime {name!r} is not available")


def default_scenarios_dir() -> Path:
    return Path("scenarios")
