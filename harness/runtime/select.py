"""Which runtime a run uses: what was asked for, what the scenario allows, what exists here."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from harness.errors import ImagesError, RuntimeUnavailable
from harness.scenario.model import Scenario

from .base import HarnessHost, Runtime, Wiring
from .process import ProcessRuntime

RUNTIMES = ("auto", "process", "containers")


@dataclass(frozen=True, slots=True)
class Choice:
    name: str  # process or containers
    why: str  # one line, for the person who asked


async def choose(requested: str, scenario: Scenario, console: Console | None = None) -> Choice:
    """The runtime for ``scenario``. ``auto`` takes containers where an engine answers and the
    images can be had (built now if need be, with progress on ``console``), else processes."""
    if requested not in RUNTIMES:
        raise RuntimeUnavailable(f"runtime {requested!r}: expected {', '.join(RUNTIMES)}")
    if requested == "auto":
        if "containers" not in scenario.runtimes:
            choice = Choice("process", f"scenario {scenario.name} runs on processes only")
        elif (missing := await containers_missing(console)) is not None:
            choice = Choice("process", missing)
        else:
            choice = Choice("containers", "a Docker engine answers and the images are ready")
    elif requested == "containers":
        if (missing := await containers_missing(console)) is not None:
            raise RuntimeUnavailable(f"--runtime containers: {missing}")
        choice = Choice("containers", "asked for")
    else:
        choice = Choice("process", "asked for")
    if choice.name not in scenario.runtimes:
        raise RuntimeUnavailable(f"scenario {scenario.name} runs on {', '.join(scenario.runtimes)}"
                                 f", not on {choice.name}")
    return choice


async def containers_missing(console: Console | None = None) -> str | None:
    """None when containers can run here; else one line saying what is missing and what to do
    (no engine: how to get one; images that cannot be built: why)."""
    # Imported here: the process runtime must not need testcontainers or an engine.
    from .containers.images import ensure_images

    try:
        await ensure_images(console)
    except ImagesError as exc:  # EngineUnavailable included: its message says how to get one
        return str(exc)
    return None


def choose_runtime(requested: str, scenario: Scenario, console: Console | None = None) -> str:
    """``choose`` for callers that are not coroutines, or that cannot await at this point.

    It runs on a thread of its own with its own event loop, so it works both with no loop and
    from inside a running one (where it holds that loop up until the choice is made: at the
    start of a run, before anything else is running on it).
    """
    with ThreadPoolExecutor(1, thread_name_prefix="choose-runtime") as pool:
        return pool.submit(asyncio.run, choose(requested, scenario, console)).result().name


async def harness_host(name: str) -> HarnessHost:
    """Where the fake Home Assistant must listen for runtime ``name``'s services to reach it."""
    if name == "containers":
        from .containers.host import harness_host as containers_host

        return await containers_host()
    return HarnessHost()  # processes share the harness's loopback


def make_runtime(name: str, wiring: Wiring) -> Runtime:
    if name == "process":
        return ProcessRuntime(wiring)
    if name == "containers":
        from .containers.runtime import ContainersRuntime

        return ContainersRuntime(wiring)
    raise RuntimeUnavailable(f"runtime {name!r} is not available")


def default_scenarios_dir() -> Path:
    return Path("scenarios")
