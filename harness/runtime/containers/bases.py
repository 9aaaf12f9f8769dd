"""Which base each image is built on, and why.

In order, for each image: the override from the environment (``CUTOVER_BASE_IMAGE`` for the
pipeline, ``CUTOVER_INFLUX_IMAGE`` for a ready InfluxDB image run as is); the usual pinned
image when the engine already has it; the pinned image pulled, when a registry answers; and
otherwise a base made here from a Debian rootfs. The registry is asked once per run, with a
short timeout, and only when something still needs it. Pinned, never ``latest``: the same
tag gives the same build tomorrow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from harness.errors import ImagesError

from .engine import LineSink, Pulled

PINNED_PYTHON = "python:3.11-slim-bookworm"
PINNED_INFLUXDB = "influxdb:1.8"
DEFAULT_REGISTRY_TIMEOUT = 10.0  # seconds to a registry's first answer

Source = Literal["override", "local", "registry", "rootfs"]


class Engine(Protocol):
    """The boundary base choice talks to (``engine.Docker``; a fake in tests)."""

    async def image_id(self, ref: str) -> str | None: ...

    async def pull(self, ref: str, *, answer_timeout: float, total_timeout: float = ...,
                   on_line: LineSink | None = ...) -> Pulled: ...


@dataclass(frozen=True, slots=True)
class BaseChoice:
    ref: str | None  # None: the base is to be made from a Debian rootfs
    source: Source
    reason: str  # for "rootfs": why no registry image (the rootfs itself goes without saying)


@dataclass(frozen=True, slots=True)
class Bases:
    pipeline: BaseChoice
    influxdb: BaseChoice  # source "override": CUTOVER_INFLUX_IMAGE, used as is (no build)

    @property
    def needs_rootfs(self) -> bool:
        return self.pipeline.source == "rootfs" or self.influxdb.source == "rootfs"


async def _override(engine: Engine, var: str, ref: str, timeout: float,
                    on_line: LineSink | None) -> BaseChoice:
    if await engine.image_id(ref) is None:
        pulled = await engine.pull(ref, answer_timeout=timeout, on_line=on_line)
        if not pulled.ok:
            raise ImagesError(f"{var}={ref}: the engine has no such image and pulling it "
                              f"failed ({pulled.detail})")
    return BaseChoice(ref, "override", f"{var}={ref}")


async def choose_bases(engine: Engine, env: Mapping[str, str] | None = None,
                       on_line: LineSink | None = None) -> Bases:
    env = os.environ if env is None else env
    try:
        timeout = float(env.get("CUTOVER_REGISTRY_TIMEOUT", DEFAULT_REGISTRY_TIMEOUT))
    except ValueError:
        raise ImagesError("CUTOVER_REGISTRY_TIMEOUT: expected a number of seconds") from None

    chosen: dict[str, BaseChoice] = {}
    wanted = {"pipeline": ("CUTOVER_BASE_IMAGE", PINNED_PYTHON),
              "influxdb": ("CUTOVER_INFLUX_IMAGE", PINNED_INFLUXDB)}
    for image, (var, pinned) in wanted.items():
        if env.get(var):
            chosen[image] = await _override(engine, var, env[var], timeout, on_line)
        elif await engine.image_id(pinned) is not None:
            chosen[image] = BaseChoice(pinned, "local", f"pinned {pinned}, already in the engine")

    registry_down: str | None = None  # why the registry is taken as absent, once it was
    registry_up = False
    for image, (_var, pinned) in wanted.items():
        if image in chosen:
            continue
        if registry_down is None:
            pulled = await engine.pull(pinned, answer_timeout=timeout, on_line=on_line)
            if pulled.ok:
                registry_up = True
                chosen[image] = BaseChoice(pinned, "registry",
                                           f"pinned {pinned}, pulled: a registry answered")
                continue
            registry_down = (f"`docker pull {pinned}` failed ({pulled.detail})" if registry_up
                             else f"no registry answered `docker pull {pinned}` "
                                  f"({pulled.detail})")
        chosen[image] = BaseChoice(None, "rootfs", registry_down)
    return Bases(pipeline=chosen["pipeline"], influxdb=chosen["influxdb"])
